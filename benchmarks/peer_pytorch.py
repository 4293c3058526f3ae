"""Peer 2 of the benchmark suite: LeNet-5 trained by a plain PyTorch loop in the style of the
official PyTorch MNIST example (pytorch/examples, mnist/main.py): a `DataLoader` over a
`TensorDataset`, batch 128, shuffled, Adam 0.001, `model.train()` / `model.eval()` loops.

Trains until the test accuracy reaches --target or --max-epochs pass, then measures inference, as
benchmarks/peer_protocol.py says.

    python benchmarks/peer_pytorch.py DATA_DIR [--max-epochs 15] [--seed 0] [--device cpu]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from peer_protocol import argument_parser, report, time_inference, train_to_target
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lenet5.data.mnist import load_splits  # (the same IDX files and split as everyone)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return F.log_softmax(self.fc3(x), dim=1)


def train(model: nn.Module, device: torch.device, loader: DataLoader, optimizer) -> None:  # type: ignore[no-untyped-def]
    model.train()
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()


def test(model: nn.Module, device: torch.device, loader: DataLoader) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            correct += model(data).argmax(dim=1).eq(target).sum().item()
    return correct / len(loader.dataset)  # type: ignore[arg-type]


def dataset(images: torch.Tensor, labels: torch.Tensor) -> TensorDataset:
    return TensorDataset(images.unsqueeze(1).float() / 255.0, labels)


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="(default: cpu)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    splits = load_splits("mnist", args.data_dir, download_missing=False, progress=False)
    train_loader = DataLoader(
        dataset(splits.train.images, splits.train.labels), batch_size=128, shuffle=True
    )
    test_set = dataset(splits.test.images, splits.test.labels)
    test_loader = DataLoader(test_set, batch_size=1000)
    model = Net().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    epochs = train_to_target(
        "pytorch-example",
        lambda: train(model, device, train_loader, optimizer),
        lambda: test(model, device, test_loader),
        args.max_epochs,
        args.target,
    )
    model.eval()
    with torch.no_grad():
        inference = time_inference(
            lambda images: model(images).cpu(), test_set.tensors[0].to(device)
        )
    report("pytorch-example", {"torch": torch.__version__}, epochs, **inference)


if __name__ == "__main__":
    main()
