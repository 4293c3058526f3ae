"""Training: the loop, run directories, logging, optimizers, distillation, the study."""
