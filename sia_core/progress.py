"""Progress through named stages, reported through the engine's optional `(step, total, info)` callback."""

from __future__ import annotations

from typing import Callable, Optional

# (step, total, info): how every long engine call reports progress; the app drives st.progress with it
ProgressCallback = Callable[[int, int, dict], None]


class StageProgress:
    """Call with a stage label when a stage finishes; forwards (done, total, {"stage": label})."""

    def __init__(self, total: int, callback: Optional[ProgressCallback]) -> None:
        self.total = total
        self.done = 0
        self.callback = callback

    def __call__(self, label: str) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total, {"stage": label})
