"""lenet5: train, study and serve LeNet-5 on handwritten digits."""

__version__ = "0.1.0"
