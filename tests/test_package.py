from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

import lenet5


def test_the_api_functions_stay_functions_once_their_submodules_are_imported() -> None:
    import lenet5.inference.evaluate
    import lenet5.inference.explain
    import lenet5.inference.predict
    import lenet5.training.loop

    model = lenet5.build_model("lenet5")
    x = torch.zeros(3, 1, 28, 28)
    assert lenet5.predict(model, x).shape == (3, 10)
    assert callable(lenet5.evaluate) and lenet5.evaluate.__name__ == "evaluate"
    assert lenet5.explain(model, np.zeros((28, 28), np.uint8)).saliency.shape == (28, 28)
    assert lenet5.TrainConfig().model == "lenet5"


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, lenet5; print('torch' in sys.modules, lenet5.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", lenet5.__version__]
