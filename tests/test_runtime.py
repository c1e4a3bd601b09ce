"""The process-wide settings of `sia_core.runtime`: freed activation-sized blocks are reused, not faulted back in;
a block that holds torch to one thread."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# an attack step's shape of allocation: three 12 MiB buffers (a conv layer's activations and gradients at batch
# 128), made and freed again and again; prints the minor page faults of the second round, once warm. Both processes
# start from glibc's initial thresholds, held fixed (glibc would otherwise adapt them to whatever the imports
# happened to allocate, so the control would depend on history)
GLIBC_INITIAL_THRESHOLDS = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072"
STEADY_STATE_FAULTS = """
import resource, sys
import torch
from sia_core.runtime import keep_freed_memory_for_reuse
applied = keep_freed_memory_for_reuse() if sys.argv[1] == "tuned" else None
for round_ in range(2):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        held = [torch.empty(12 * 2**18).fill_(1.0) for _ in range(3)]
        del held
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def _steady_state_faults(mode: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", STEADY_STATE_FAULTS, mode], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1",
                               "GLIBC_TUNABLES": GLIBC_INITIAL_THRESHOLDS})
    applied, faults = done.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the setting is glibc's malloc")
def test_freed_buffers_are_reused_instead_of_faulted_back_in():
    applied, tuned = _steady_state_faults("tuned")
    _, default = _steady_state_faults("default")
    assert applied == "True"
    # 20 rounds of 36 MiB is 184,320 pages: at glibc's initial thresholds each comes back from the kernel
    assert default > 50_000
    assert tuned < 1_000


def test_the_setting_is_applied_once_per_process():
    from sia_core.runtime import keep_freed_memory_for_reuse

    first = keep_freed_memory_for_reuse()
    assert keep_freed_memory_for_reuse() is first
    assert first == (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc")


def test_one_thread_holds_torch_to_one_thread_and_restores_the_count():
    import torch

    from sia_core.runtime import one_thread

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"):
        with one_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")  # restored on the way out of an error too
    assert torch.get_num_threads() == before
