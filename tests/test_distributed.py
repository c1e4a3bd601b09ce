"""Batch studies on torchrun: the shards are whole batches of the one-process run, and a 2-process margin study on
loopback prints the same figures as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from sia_core.distributed import Shard, batch_aligned_indices, gather_rows
from tests.app_server import free_port
from tests.conftest import PROJECT_ROOT

TIMINGS = {"seconds_logit_margins", "seconds_input_margins", "speedup"}  # wall times: never equal run to run


def test_shards_are_whole_batches_that_cover_every_image_once():
    for n, batch, world in ((1000, 256, 2), (1000, 256, 3), (10, 4, 4), (3, 256, 2), (512, 256, 2)):
        shards = [batch_aligned_indices(n, batch, Shard(rank, world)) for rank in range(world)]
        assert torch.equal(torch.cat(shards).sort().values, torch.arange(n))
        for rank, index in enumerate(shards):
            starts = index[::batch].tolist() if len(index) else []
            assert all(start % batch == 0 and (start // batch) % world == rank for start in starts)
    assert torch.equal(batch_aligned_indices(1000, 256, Shard(1, 2)), torch.cat([torch.arange(256, 512),
                                                                                 torch.arange(768, 1000)]))
    part = torch.rand(7, 3)
    assert gather_rows(part, 7, 4, Shard()) is part  # one process: nothing to gather


def _margins(command: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_processes_on_torchrun_print_the_one_process_margins():
    study = ["margins", "--model", "fmnist-robust", "--data", "fashion-mnist-subset", "--n", "300", "--json"]
    single = _margins([sys.executable, "-m", "sia_core", *study])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                "--master-port", str(free_port()), "-m", "sia_core", "--", *study]
    double = _margins(torchrun)
    assert set(single) == set(double)
    for key, value in single.items():
        if key in TIMINGS:
            continue
        if isinstance(value, float):
            assert abs(value - double[key]) <= 1e-6 or (value != value and double[key] != double[key]), key
        else:
            assert value == double[key], key


def test_two_processes_on_torchrun_print_the_one_process_diagnosis():
    study = ["sia", "--model", "fmnist-standard", "--data", "fashion-mnist-subset", "--n", "48", "--batch-size", "16",
             "--steps", "5", "--attributes", "brightness", "contrast", "--json"]
    single = _margins([sys.executable, "-m", "sia_core", *study])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                "--master-port", str(free_port()), "-m", "sia_core", "--", *study]
    double = _margins(torchrun)  # three batches: rank 0 runs two, rank 1 one
    assert set(single) == set(double)
    _assert_close(single, double)


def _assert_close(single, double, path: str = "") -> None:
    if isinstance(single, dict):
        assert set(single) == set(double), path
        for key in single:
            _assert_close(single[key], double[key], f"{path}.{key}")
    elif isinstance(single, list):
        assert len(single) == len(double), path
        for i, (a, b) in enumerate(zip(single, double)):
            _assert_close(a, b, f"{path}[{i}]")
    elif isinstance(single, float):
        assert abs(single - double) <= 1e-6 or (single != single and double != double), path
    else:
        assert single == double, path


def _single_and_double(study: list[str]) -> tuple[dict, dict]:
    single = _margins([sys.executable, "-m", "sia_core", *study])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                "--master-port", str(free_port()), "-m", "sia_core", "--", *study]
    return single, _margins(torchrun)


def test_regions_transfer_and_constructed_set_builds_shard_to_the_one_process_figures(tmp_path):
    # each with at least two batches of the one-process run, so both processes work
    single, double = _single_and_double(["regions", "--model", "fmnist-standard", "--data", "fashion-mnist-subset",
                                         "--n", "150", "--n-fit", "140", "--steps", "3", "--json"])
    _assert_close(single, double)
    single, double = _single_and_double(["robustify", "transfer", "--models", "shapes-standard", "--data", "shapes",
                                         "--n", "800", "--columns", "fgsm,pgd-linf", "--json"])
    _assert_close(single, double)
    built = {}
    for runs, name in ((1, "one"), (2, "two")):
        study = ["features", "build", "--kind", "d_det", "--model", "fmnist-standard", "--n", "300", "--steps", "3",
                 "--out", str(tmp_path / f"{name}.npz"), "--json"]
        built[name] = _margins([sys.executable, "-m", "sia_core", *study] if runs == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(free_port()), "-m", "sia_core", "--", *study])
    _assert_close({k: v for k, v in built["one"].items() if k != "out"},
                  {k: v for k, v in built["two"].items() if k != "out"})
    from sia_core.features import ConstructedSet
    one, two = ConstructedSet.load(tmp_path / "one.npz"), ConstructedSet.load(tmp_path / "two.npz")
    assert len(one) == len(two) == 300 and torch.allclose(one.images, two.images, atol=1e-6)
    assert torch.equal(one.labels, two.labels)


def test_an_imagenet_style_folder_at_224_px_shards_to_the_one_process_figures(tmp_path):
    """A user's ImageNet-style folder (WordNet-id sub-folders) through EfficientNet-Lite0: the diagnosis and the
    margin study on two processes print what one process prints."""
    from PIL import Image

    from sia_core.data.imagenet import load_gallery

    gallery = load_gallery()
    # 18 photos: more than one 224-px margin batch (16 images), so both processes work
    for wnid, picks in (("n02123045", (0, 3, 5)), ("n07920052", (1, 4, 6))):  # tabby, espresso
        (tmp_path / wnid).mkdir()
        for pick in picks:
            array = (gallery.images[pick].permute(1, 2, 0) * 255).round().byte().numpy()
            for size in ((256, 240), (300, 224), (224, 320)):
                Image.fromarray(array).resize(size).save(tmp_path / wnid / f"photo{pick}-{size[0]}x{size[1]}.png")
    data = f"imagenet-folder:{tmp_path}"
    single, double = _single_and_double(["sia", "--model", "efficientnet-lite0", "--data", data, "--n", "6",
                                         "--batch-size", "2", "--steps", "2", "--attributes", "brightness", "hue",
                                         "--json"])
    _assert_close(single, double)  # three batches: rank 0 runs two, rank 1 one
    single, double = _single_and_double(["margins", "--model", "efficientnet-lite0", "--data", data, "--n", "18",
                                         "--json"])
    assert set(single) == set(double)
    _assert_close({k: v for k, v in single.items() if k not in TIMINGS},
                  {k: v for k, v in double.items() if k not in TIMINGS})
