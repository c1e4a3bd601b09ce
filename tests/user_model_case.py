"""A user's own classifier as a third party would bring it: a 20-line LeNet file and a weights file, written by the
test (never imported from the repo), plus a launch config naming them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import torch

LENET_SOURCE = textwrap.dedent('''
    import torch.nn as nn


    class LeNet(nn.Module):
        """LeNet-5 style: two conv + pool stages, three linear layers (LeCun et al. 1998)."""

        def __init__(self, num_classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.pool = nn.MaxPool2d(2)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, num_classes)

        def forward(self, x):
            x = self.pool(self.conv1(x).relu())
            x = self.pool(self.conv2(x).relu())
            return self.fc3(self.fc2(self.fc1(x.flatten(1)).relu()).relu())


    def broken():
        raise RuntimeError("this factory needs a GPU cluster")
''')


def write_lenet(folder: Path, epochs: int = 1) -> tuple[Path, Path]:
    """lenet.py and lenet.pt (a plain `torch.save` of the state_dict with a `module.` prefix, as DataParallel
    writes it), trained for `epochs` quick passes over every other image of the embedded Fashion-MNIST subset so
    its predictions mean something (a fixture, not a benchmark: the other half is unseen)."""
    import importlib.util

    from sia_core.data.catalog import load_dataset

    source = folder / "lenet.py"
    source.write_text(LENET_SOURCE)
    spec = importlib.util.spec_from_file_location("third_party_lenet", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        network = module.LeNet()
    data = load_dataset("fashion-mnist-subset")
    images, labels = data.images[::2], data.labels[::2]
    optimizer = torch.optim.Adam(network.parameters(), lr=2e-3)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order), 64):
            batch = order[start:start + 64]
            loss = torch.nn.functional.cross_entropy(network((images[batch] - 0.3) / 0.35), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    weights = folder / "lenet.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in network.state_dict().items()}}, weights)
    return source, weights


def write_config(folder: Path, source: Path, weights: Path, *, factory: str = "LeNet") -> Path:
    config = folder / "sia_explorer.toml"
    config.write_text(textwrap.dedent(f'''
        [[model]]
        spec = "python:{source.name}:{factory}"
        weights = "{weights.name}"
        input_shape = [1, 28, 28]
        mean = [0.3]
        std = [0.35]
        data = "fashion-mnist-subset"
    '''))
    return config
