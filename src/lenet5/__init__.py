"""lenet5: train, study and serve LeNet-5 on handwritten digits."""

from lenet5.checkpoint import load_model
from lenet5.config import TrainConfig
from lenet5.data import load_splits
from lenet5.evaluate import evaluate
from lenet5.models import build_model, count_parameters
from lenet5.predict import predict
from lenet5.train import fit, train_one_epoch

__version__ = "0.1.0"

__all__ = [
    "TrainConfig",
    "__version__",
    "build_model",
    "count_parameters",
    "evaluate",
    "fit",
    "load_model",
    "load_splits",
    "predict",
    "train_one_epoch",
]
