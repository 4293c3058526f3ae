"""Peer 2 of the benchmark suite: LeNet-5 trained by a plain PyTorch loop in the style of the
official PyTorch MNIST example (pytorch/examples, mnist/main.py): a `DataLoader` over a
`TensorDataset`, batch 128, shuffled, Adam 0.001, `model.train()` / `model.eval()` loops.

Trains until the test accuracy reaches --target or --max-epochs pass, then measures inference;
prints one JSON object. Time per epoch is the training loop only (evaluation excluded).

    python benchmarks/peer_pytorch.py DATA_DIR [--max-epochs 15] [--seed 0] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

started = time.perf_counter()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lenet5.data import load_splits  # noqa: E402  (the same IDX files and split as everyone)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
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
    epochs: list[dict[str, float]] = []
    seconds_to_target = None
    for epoch in range(1, args.max_epochs + 1):
        t0 = time.perf_counter()
        train(model, device, train_loader, optimizer)
        seconds = time.perf_counter() - t0
        accuracy = test(model, device, test_loader)
        epochs.append({"epoch": epoch, "seconds": seconds, "test_accuracy": accuracy})
        print(f"pytorch-example epoch {epoch}: {seconds:.1f} s, test {accuracy:.4f}", flush=True)
        if accuracy >= args.target:
            seconds_to_target = sum(e["seconds"] for e in epochs)
            break
    wall_to_target = time.perf_counter() - started if seconds_to_target else None

    model.eval()
    x = test_set.tensors[0].to(device)
    with torch.no_grad():
        for _ in range(2):
            model(x[:1000])
        t0 = time.perf_counter()
        for batch in test_loader:
            model(batch[0].to(device)).cpu()
        images_per_s = len(x) / (time.perf_counter() - t0)
        single = []
        for i in range(300):
            t0 = time.perf_counter()
            model(x[i : i + 1]).cpu()
            single.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "system": "pytorch-example",
                "versions": {"torch": torch.__version__},
                "epochs": epochs,
                "seconds_to_target": seconds_to_target,
                "wall_to_target": wall_to_target,
                "images_per_s": images_per_s,
                "single_image_ms": statistics.median(single[50:]) * 1e3,
            }
        )
    )


if __name__ == "__main__":
    main()
