"""lenet5: train, study and serve LeNet-5 on handwritten digits.

The API below is imported on first use (PEP 562), so that `import lenet5` and `lenet5 --help`
do not pay for importing torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "TrainConfig": "lenet5.config",
    "build_model": "lenet5.models",
    "count_parameters": "lenet5.models",
    "evaluate": "lenet5.evaluate",
    "explain": "lenet5.explain",
    "fit": "lenet5.train",
    "load_model": "lenet5.checkpoint",
    "load_splits": "lenet5.data",
    "predict": "lenet5.predict",
    "train_one_epoch": "lenet5.train",
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
    from lenet5.checkpoint import load_model
    from lenet5.config import TrainConfig
    from lenet5.data import load_splits
    from lenet5.evaluate import evaluate
    from lenet5.explain import explain
    from lenet5.models import build_model, count_parameters
    from lenet5.predict import predict
    from lenet5.train import fit, train_one_epoch


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'lenet5' has no attribute {name!r}")


def _function(name: str) -> property:
    """The package's function `name`, whatever submodule of that name was imported over it."""
    return property(lambda _self: __getattr__(name), lambda _self, _submodule: None)


class _Package(types.ModuleType):
    """`lenet5.predict`, `lenet5.evaluate` and `lenet5.explain` are functions that share their
    names with submodules: importing a submodule sets the package's attribute of its name, and
    these properties keep the functions there all the same."""

    predict = _function("predict")
    evaluate = _function("evaluate")
    explain = _function("explain")


sys.modules[__name__].__class__ = _Package
