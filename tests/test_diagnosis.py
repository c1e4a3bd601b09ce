"""Diagnosis: histograms find a weakness that is known to be there, and the report exports cleanly."""

from __future__ import annotations

import csv
import io

import torch

from sia_core.data.base import ImageDataset
from sia_core.diagnosis import BASELINES, DiagnosisConfig, diagnose, select_correct
from tests.test_semantic_attack import brightness_model


def _near_boundary_dataset(n: int = 24) -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=generator)
    level = 0.5 + (2 * labels.float() - 1) * 0.1  # 0.1 from the boundary: brightness reaches it, 4/255 does not
    images = level.view(-1, 1, 1, 1) + 0.02 * torch.randn(n, 1, 8, 8, generator=generator)
    return ImageDataset("near", images.clamp(0, 1), labels, ("dark", "bright"))


def test_a_brightness_reader_is_diagnosed_as_brightness_sensitive():
    report = diagnose(brightness_model(), _near_boundary_dataset(), DiagnosisConfig(n=24, eps_img=4 / 255, steps=20))
    assert report.ranking()[0] == "brightness"
    k = report.attribute_names.index("brightness")
    assert float(report.sensitivity_success[k]) == 1.0
    assert float(report.dominance[k]) > 0.5
    assert report.success_rate["pgd"] == 0.0 and report.success_rate["sia"] == 1.0
    assert set(report.success_rate) == set(BASELINES)
    assert report.per_class_sensitivity.shape == (2, len(report.attribute_names))


def test_report_exports_json_and_csv():
    report = diagnose(brightness_model(), _near_boundary_dataset(8), DiagnosisConfig(n=8, steps=5))
    summary = report.to_dict()
    assert summary["n"] == 8 and set(summary["sensitivity"]) == set(report.attribute_names)
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == len(report.attribute_names) * 3  # all + two classes
    assert {row["scope"] for row in rows} == {"all", "dark", "bright"}


def test_only_correctly_classified_images_are_attacked():
    data = _near_boundary_dataset(40)
    flipped = ImageDataset("mixed", data.images, torch.cat([1 - data.labels[:10], data.labels[10:]]), data.class_names)
    chosen = select_correct(brightness_model(), flipped, n=100)
    assert len(chosen) == 30 and torch.all(chosen >= 10)
