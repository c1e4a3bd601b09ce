"""Shapes' landmarks (centre and bounding-box corners) agree with the pixels the generator draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sia_core.data.shapes import LANDMARK_NAMES, SHAPE_CLASSES, ShapesConfig, _render, generate_shapes, shape_landmarks


def test_landmarks_bound_the_drawn_shape_to_within_a_pixel_for_every_shape():
    dataset = generate_shapes(ShapesConfig(n=200, seed=3))
    points = shape_landmarks(dataset) * 32  # pixels
    assert points.shape == (200, len(LANDMARK_NAMES), 2)
    for index in range(len(dataset)):
        attrs = {name: dataset.attributes[name][index:index + 1].numpy() for name in
                 ("hue", "background_brightness", "size", "rotation", "position_x", "position_y")}
        attrs["background_brightness"] = np.zeros(1, dtype=np.float32)
        attrs["hue"] = np.zeros(1, dtype=np.float32)
        shape = SHAPE_CLASSES[int(dataset.attributes["shape"][index])]
        drawn = _render(shape, attrs, np.zeros((1, 3, 32, 32), dtype=np.float32), 32)[0].max(0)  # coverage-ish
        # the box of every pixel the shape touches (coverage > 0), first one's left edge to last one's right edge:
        # the exact box lies within 1.5 px of it (a sharp corner can poke into a pixel whose centre stays more than
        # half a pixel away, and the distance fields are exact along edges, not around corners)
        touched_rows, touched_cols = np.nonzero(drawn > 0)
        outer = torch.tensor([[touched_cols.min(), touched_rows.min()],
                              [touched_cols.max() + 1.0, touched_rows.max() + 1.0]]).float()
        assert torch.allclose(points[index, 1:], outer, atol=1.5), (shape, points[index], outer)
        rows, cols = np.nonzero(drawn >= 0.5)
        centre = torch.tensor([cols.mean() + 0.5, rows.mean() + 0.5]).float()
        if shape != "triangle" and bool((drawn >= 0.5).sum() > 20):  # symmetric shapes: the pixel mean is the centre
            assert torch.allclose(points[index, 0], centre, atol=0.6), (shape, points[index, 0], centre)


def test_landmarks_need_a_generated_dataset():
    from sia_core.data.base import ImageDataset
    from sia_core.errors import ConfigError

    with pytest.raises(ConfigError, match="generated Shapes"):
        shape_landmarks(ImageDataset("x", torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long), ("a",)))
