"""The tutorial's two models, softmax regression and LeNet-5; LeNet-5's layers wider, as a judge of
whether an image is a digit at all (`Judged`) and swept along a row of digits (`RowReader`).
All return logits.

Each model divides its logits by a `temperature` buffer: 1 while it trains, then fitted on
validation data so that its softmax probabilities are calibrated (Guo et al. 2017). A buffer, not
a parameter: no optimizer touches it, checkpoints and ONNX exports carry it, and it never
changes which digit wins."""

from __future__ import annotations

import torch
from torch import nn

IMAGE_SIZE = 28  # input images are (1, 28, 28)
NUM_CLASSES = 10
KERNEL_SIZE = 5
POOL_SIZE = 2
CONV1_CHANNELS = 6
CONV2_CHANNELS = 16
FC1_UNITS = 120
FC2_UNITS = 84
# SAME padding keeps conv1 at 28x28, pooling halves it; VALID conv2 loses KERNEL_SIZE - 1.
CONV2_OUT = IMAGE_SIZE // POOL_SIZE - (KERNEL_SIZE - 1)  # 10
TUTORIAL_INIT_STD = 0.1  # tf.truncated_normal(stddev=0.1), biases zero
LENET5_WIDTHS = (CONV1_CHANNELS, CONV2_CHANNELS, FC1_UNITS)

# The judge: LeNet-5's layers, wider, trained on more kinds of non-digits to say whether an image
# is a digit at all (the digit itself is LeNet-5's answer). Wider layers refuse more of the
# drawings that no training run sees, the kinds its generator does not make included
# (docs/robustness.md).
JUDGE_WIDTHS = (16, 32, 160)  # conv1's and conv2's channels, fc1's units

# The row reader: LeNet-5's layers up to fc1 slid along a row 28 pixels high (fc1 becomes a
# 5x5 convolution over conv2's pooled maps, as in LeCun et al. 1998's Space Displacement Neural
# Network), read in both directions by a small GRU and answered per step (CTC). Its layers are
# wider than LeNet-5's: a window over touching digits holds parts of two or three, and
# LeNet-5's 6, 16 and 120 read rows worse (docs/predicting.md).
ROW_CONV1 = 32  # conv1's channels (LeNet-5: 6)
ROW_CONV2 = 64  # conv2's channels (LeNet-5: 16)
ROW_FEATURES = 256  # fc1's units, a 5x5 convolution here (LeNet-5: 120)
ROW_STEP = POOL_SIZE  # pixels between the reader's steps: 2 (two sweeps sharing convolutions)
SWEEP_STRIDE = POOL_SIZE * POOL_SIZE  # pixels between one sweep's steps: 4
ROW_HIDDEN = 64  # GRU units each way
GARBAGE = NUM_CLASSES  # the row reader's class for a piece that is not a digit: 10
BLANK = NUM_CLASSES + 1  # CTC's "nothing new here": 11
ROW_CLASSES = NUM_CLASSES + 2

MODEL_NAMES = ("lenet5", "softmax", "judge")
INIT_NAMES = ("tutorial", "pytorch")


class SoftmaxRegression(nn.Module):
    """784 -> 10 linear map; softmax lives in the loss."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(IMAGE_SIZE * IMAGE_SIZE, NUM_CLASSES)
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(x)) / self.temperature  # (N, 10)


class LeNet5(nn.Module):
    """LeNet-5 as in the tutorial: 61,706 parameters, optional dropout before the first FC layer;
    `widths` (conv1's and conv2's channels, fc1's units) make it wider (the judge).

    `read_scales` (none by default): in eval mode, the logits are averaged over the image
    rescaled about its centre by each factor (test-time augmentation); training sees the image
    as given. The rescaling is two fixed 28x28 matrices per factor (bilinear), no parameters."""

    temperature: torch.Tensor
    views: torch.Tensor | None

    def __init__(
        self,
        dropout: float = 0.0,
        read_scales: tuple[float, ...] = (),
        widths: tuple[int, int, int] = LENET5_WIDTHS,
    ) -> None:
        super().__init__()
        conv1, conv2, fc1 = widths
        self.conv1 = nn.Conv2d(1, conv1, KERNEL_SIZE, padding=KERNEL_SIZE // 2)
        self.pool1 = nn.MaxPool2d(POOL_SIZE)
        self.conv2 = nn.Conv2d(conv1, conv2, KERNEL_SIZE)
        self.pool2 = nn.MaxPool2d(POOL_SIZE)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(conv2 * (CONV2_OUT // POOL_SIZE) ** 2, fc1)
        self.fc2 = nn.Linear(fc1, FC2_UNITS)
        self.fc3 = nn.Linear(FC2_UNITS, NUM_CLASSES)
        self.register_buffer("temperature", torch.ones(()))
        # (V, 28, 28); not saved with the weights: the config that builds the model holds them
        views = torch.stack([scale_matrix(s) for s in read_scales]) if read_scales else None
        self.register_buffer("views", views, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.views is None or self.training:
            return self.logits(x) / self.temperature
        v, n = self.views.shape[0], x.shape[0]
        views = self.views[:, None, None]  # (V, 1, 1, 28, 28)
        x = (views @ x[None] @ views.transpose(-1, -2)).flatten(0, 1)  # (V * N, 1, 28, 28)
        return self.logits(x).view(v, n, NUM_CLASSES).mean(dim=0) / self.temperature

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The network itself: (N, 1, 28, 28) -> (N, 10), before the temperature."""
        # ReLU after pooling: max-pooling and ReLU commute, and ReLU then touches 4x fewer values.
        x = torch.relu(self.pool1(self.conv1(x)))  # (N, 6, 14, 14) (LeNet-5's widths)
        x = torch.relu(self.pool2(self.conv2(x)))  # (N, 16, 5, 5)
        x = self.dropout(self.flatten(x))  # (N, 400)
        x = torch.relu(self.fc1(x))  # (N, 120)
        x = torch.relu(self.fc2(x))  # (N, 84)
        return self.fc3(x)  # (N, 10)


class Judged(nn.Module):
    """A digit model (`reader`) and a judge of whether the image is a digit at all: (N, 1, 28,
    28) -> (N, 10) log-probabilities. Where the judge's surest digit has a calibrated
    probability under `below`, and under the reader's, the reader's probabilities are mixed
    with equal ones until their top equals the judge's (a non-digit is taught equal
    probabilities); elsewhere they are the reader's. The reader's digit always wins, so
    accuracy is the reader's, and an answer refused under a threshold of at least `below`
    (`lenet5.inference.calibration.REFUSE_BELOW`) is refused wherever the judge doubts."""

    below: torch.Tensor

    def __init__(self, reader: nn.Module, judge: nn.Module, below: float) -> None:
        super().__init__()
        self.reader = reader
        self.judge = judge
        self.register_buffer("below", torch.tensor(float(below)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(self.reader(x), dim=1)  # (N, 10)
        p = log_p.exp()
        top = p.max(dim=1, keepdim=True).values  # (N, 1)
        sure = torch.softmax(self.judge(x), dim=1).max(dim=1, keepdim=True).values
        doubt = (sure < self.below) & (sure < top)
        even = 1.0 / NUM_CLASSES
        weight = (sure - even) / (top - even).clamp_min(1e-12)  # the reader's share: top -> sure
        mixed = torch.log((weight * p + (1 - weight) * even).clamp_min(1e-30))
        return torch.where(doubt, mixed, log_p)


def scale_matrix(scale: float, size: int = IMAGE_SIZE) -> torch.Tensor:
    """The (size, size) matrix A such that A @ image @ A.T is the image magnified `scale` times
    about its centre (bilinear; paper, 0, where it reaches past the edge)."""
    centre = (size - 1) / 2
    source = centre + (torch.arange(size, dtype=torch.float64) - centre) / scale  # (size,)
    left = source.floor()
    matrix = torch.zeros(size, size, dtype=torch.float64)
    for column, weight in ((left, 1 - (source - left)), (left + 1, source - left)):
        inside = (column >= 0) & (column < size)
        rows = torch.arange(size)[inside]
        matrix[rows, column[inside].long()] += weight[inside]
    return matrix.float()


class MaxPool2x2(nn.Module):
    """nn.MaxPool2d(2) as the maxima of strided slices: the same numbers, and on CPU about 20
    times faster on a batch of the row reader's long maps ((12, 32, 28, 180), one thread of an
    AMD EPYC, torch 2.13)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
        x = torch.maximum(x[:, :, 0:h:2, :w], x[:, :, 1:h:2, :w])  # (N, C, H / 2, W)
        return torch.maximum(x[..., 0::2], x[..., 1::2])  # (N, C, H / 2, W / 2)


class RowReader(nn.Module):
    """LeNet-5's layers swept along a row of digits: input (N, 1, 28, W), logits
    (N, T, ROW_CLASSES), one step every ROW_STEP pixels (step t sees the 28 columns from
    ROW_STEP * t). The widths default to the bundled wider readers'; LeNet-5's own (6, 16, 120) can
    start from a trained LeNet-5 (`load_lenet5`)."""

    def __init__(
        self, conv1: int = ROW_CONV1, conv2: int = ROW_CONV2, features: int = ROW_FEATURES
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, conv1, KERNEL_SIZE, padding=KERNEL_SIZE // 2)
        self.pool1 = MaxPool2x2()
        self.conv2 = nn.Conv2d(conv1, conv2, KERNEL_SIZE)
        self.pool2 = MaxPool2x2()
        self.fc1 = nn.Conv2d(conv2, features, CONV2_OUT // POOL_SIZE)  # LeNet's fc1
        self.gru = nn.GRU(features, ROW_HIDDEN, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * ROW_HIDDEN, ROW_CLASSES)

    def sweep(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, W) -> fc1's features (N, features, T), one step every ROW_STEP pixels:
        LeNet-5's layers on each 28-column window, slid SWEEP_STRIDE pixels at a time from
        column 0 and again from column ROW_STEP. The second pass shares the first's
        convolutions: ROW_STEP is POOL_SIZE, so its windows are one column on in pool1's and
        conv2's maps, and only conv2's pooling and fc1 differ."""
        x = torch.relu(self.pool1(self.conv1(x)))  # (N, conv1, 14, W / 2)
        x = self.conv2(x)  # (N, conv2, 10, W / 2 - 4)
        passes = [
            torch.relu(self.fc1(torch.relu(self.pool2(x[..., k:]))))[:, :, 0]  # (N, features, T_k)
            for k in range(SWEEP_STRIDE // ROW_STEP)
        ]
        steps = passes[-1].shape[2]
        return torch.stack([s[:, :, :steps] for s in passes], dim=3).flatten(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.gru(self.sweep(x).transpose(1, 2))  # (N, T, 2 * ROW_HIDDEN)
        return self.out(x)  # (N, T, ROW_CLASSES)

    def load_lenet5(self, weights: dict[str, torch.Tensor]) -> None:
        """Start from a trained LeNet-5's conv1, conv2 and fc1 (reshaped to a convolution);
        only a reader as wide as LeNet-5 (6, 16, 120) can. Raises ValueError otherwise."""
        widths = (self.conv1.out_channels, self.conv2.out_channels, self.fc1.out_channels)
        if widths != (CONV1_CHANNELS, CONV2_CHANNELS, FC1_UNITS):
            raise ValueError(
                f"a row reader of widths {widths} cannot start from LeNet-5's layers "
                f"({CONV1_CHANNELS}, {CONV2_CHANNELS}, {FC1_UNITS})"
            )
        own = self.state_dict()
        for name in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.bias"):
            own[name] = weights[name]
        own["fc1.weight"] = weights["fc1.weight"].view(own["fc1.weight"].shape)
        self.load_state_dict(own)


class RowReaders(nn.ModuleList):
    """Row readers that read together (their readings vote): (N, 1, 28, W) -> each reader's
    logits, one reader after another, (R * N, T, ROW_CLASSES)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([reader(x) for reader in self])


def row_steps(width: int) -> int:
    """The row reader's steps on an input `width` pixels wide (its second sweep starts
    ROW_STEP in, so the first gives one step more when the widths differ)."""
    return (SWEEP_STRIDE // ROW_STEP) * ((width - ROW_STEP) // SWEEP_STRIDE - 6)


def tutorial_init_(model: nn.Module) -> None:
    """The tutorial's initialisation: zeros for softmax regression; for LeNet-5, weights from a
    normal(0, 0.1) truncated at two standard deviations and zero biases."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            if isinstance(model, SoftmaxRegression):
                nn.init.zeros_(module.weight)
            else:
                std = TUTORIAL_INIT_STD
                nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def build_model(
    name: str = "lenet5",
    dropout: float = 0.0,
    init: str = "tutorial",
    read_scales: tuple[float, ...] | list[float] = (),
) -> nn.Module:
    """Build a model by name; `init` is "tutorial" or "pytorch" (the framework's default);
    `read_scales`, LeNet-5's test-time rescalings (none: it reads the image as given)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r} (choose from {', '.join(MODEL_NAMES)})")
    if init not in INIT_NAMES:
        raise ValueError(f"unknown init {init!r} (choose from {', '.join(INIT_NAMES)})")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if not all(0 < s < float("inf") for s in read_scales):
        raise ValueError(f"read scales must be positive numbers, got {list(read_scales)}")
    if name == "softmax":
        if dropout or read_scales:
            raise ValueError("dropout and read scales apply to lenet5 and the judge only")
        model: nn.Module = SoftmaxRegression()
    else:
        model = LeNet5(
            dropout, tuple(read_scales), JUDGE_WIDTHS if name == "judge" else LENET5_WIDTHS
        )
    if init == "tutorial":
        tutorial_init_(model)
    return model


def digit_reader(model: nn.Module) -> nn.Module:
    """The network that reads the digit: a judged model's reader, or the model itself."""
    return model.reader if isinstance(model, Judged) else model


def set_temperature(model: nn.Module, value: float) -> None:
    """Set the temperature that divides the logits (1: the logits as trained)."""
    model.get_buffer("temperature").fill_(value)


def with_temperature(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict saved before models had a temperature gets the neutral one (1)."""
    if "temperature" in weights:
        return weights
    return {**weights, "temperature": torch.ones(())}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
