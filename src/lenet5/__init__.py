"""lenet5: train, study and serve LeNet-5 on handwritten digits.

The API below is imported on first use (PEP 562), so that `import lenet5` and `lenet5 --help`
do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "TrainConfig": "lenet5.config",
    "build_model": "lenet5.models",
    "count_parameters": "lenet5.models",
    "evaluate": "lenet5.inference.evaluate",
    "explain": "lenet5.inference.explain",
    "fit": "lenet5.training.loop",
    "load_model": "lenet5.inference.checkpoint",
    "load_splits": "lenet5.data.mnist",
    "predict": "lenet5.inference.predict",
    "train_one_epoch": "lenet5.training.loop",
}

__all__ = [
    "TrainConfig",
    "__version__",
    "build_model",
    "count_parameters",
    "evaluate",
    "explain",
    "fit",
    "load_model",
    "load_splits",
    "predict",
    "train_one_epoch",
]

if TYPE_CHECKING:
    from lenet5.config import TrainConfig
    from lenet5.data.mnist import load_splits
    from lenet5.inference.checkpoint import load_model
    from lenet5.inference.evaluate import evaluate
    from lenet5.inference.explain import explain
    from lenet5.inference.predict import predict
    from lenet5.models import build_model, count_parameters
    from lenet5.training.loop import fit, train_one_epoch


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'lenet5' has no attribute {name!r}")
