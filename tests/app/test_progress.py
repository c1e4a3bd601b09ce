"""The progress bars' words: a time left only where the steps are of one length."""

from __future__ import annotations

from sia_app import cache


class _Bar:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def progress(self, value: float, text: str = "") -> None:
        self.texts.append(text)


def test_uneven_stages_promise_no_time_left_and_even_batches_do(monkeypatch):
    bars: list[_Bar] = []

    def progress(value: float, text: str = "") -> _Bar:
        bars.append(_Bar())
        bars[-1].progress(value, text)
        return bars[-1]

    monkeypatch.setattr(cache.st, "progress", progress)
    _, report = cache._progress_bar("Diagnosing…", cache._stage, even_steps=False)
    report(2, 9, {"stage": "sensitivity to shift down"})
    first, last = bars[-1].texts
    assert "not the time left" in first
    assert last.startswith("2 of 9 steps done (the last: sensitivity to shift down) · ") and "left" not in last
    _, report = cache._progress_bar("Classifying…", cache._images_done)
    report(1, 4, {"images": 256})
    assert bars[-1].texts[-1].startswith("256 images · ") and "s left" in bars[-1].texts[-1]


def test_the_diagnosis_names_its_stages_as_the_sliders_do():
    from sia_core.diagnosis import BASELINES, DiagnosisConfig, diagnose
    from tests.attacks.test_semantic_attack import brightness_model
    from tests.test_diagnosis import _near_boundary_dataset

    stages: list[str] = []
    diagnose(brightness_model(), _near_boundary_dataset(8), DiagnosisConfig(n=8, eps_linf=4 / 255, steps=2,
                                                                             attributes=("brightness", "translate_y")),
             progress=lambda step, total, info: stages.append(info["stage"]))
    # "translate_y" and "random_attributes_pgd" were the code's names, not the page's
    assert "sensitivity to shift down" in stages and BASELINES["pgd"].label in stages
    assert not any("_" in stage for stage in stages)
