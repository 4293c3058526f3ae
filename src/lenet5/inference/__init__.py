"""Inference: checkpoints, the bundled model, engines, predict, export, explain, evaluate."""
