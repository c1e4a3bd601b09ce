"""Process-wide settings that the entry points (the server, the CLI, the bench, the long-run scripts) apply once.

glibc's malloc hands blocks above a threshold straight back to the kernel and trims the top of its heap as soon as
128 KiB lie free there. An attack step allocates and frees the same tens of megabytes of activations and gradients
over and over, so each step faults those pages back in, zero-filled, from the kernel: measured on the default
model's 30-step semantic attack (batch 128, one thread), 3,500 to 115,000 minor page faults per run, against
0 to 5,000 for 30 PGD steps, whose allocation pattern the adaptive threshold happens to suit. Keeping freed blocks
of up to 32 MiB, and up to 128 MiB free at the top of a heap, for reuse removes them (0 to 400 per run for either
attack).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import sys
from typing import Iterator

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 * 2**20  # blocks above this still go to the kernel: one huge tensor is not kept
TRIM_THRESHOLD_BYTES = 128 * 2**20  # free memory kept at the top of a heap (twice glibc's largest adaptive value)
TOP_PAD_BYTES = 16 * 2**20  # the heap grows in steps this much larger than asked for


@functools.cache
def keep_freed_memory_for_reuse() -> bool:
    """Tell glibc's malloc to keep freed blocks of up to `MMAP_THRESHOLD_BYTES` and up to `TRIM_THRESHOLD_BYTES`
    of free heap instead of returning them to the kernel. Returns whether it applied (False off glibc Linux,
    where it does nothing). Once per process; every later call returns the first answer."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # the thresholds fixed here switch glibc's adaptive thresholds off, so set all three together
    return all(mallopt(option, value) == 1 for option, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
                                                                 (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                                                                 (_M_TOP_PAD, TOP_PAD_BYTES)))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one intra-op thread inside the block, then as before. A training run's sums depend on the thread
    count (two threads moved a class of the imbalance study by 5 points), so the scripts write the studies that
    train on one thread, and the tests that rerun them do the same. Process-wide: for scripts and tests, never for
    the server, whose sessions share the process."""
    import torch  # here, not at the top: the entry points set malloc's thresholds before torch allocates

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
