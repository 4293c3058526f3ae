"""Data: MNIST files, UCI digits, augmentation, generated digits, preprocessing, corrections."""
