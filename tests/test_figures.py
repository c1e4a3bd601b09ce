"""Figures as the browser draws them."""

from __future__ import annotations

import plotly.colors
import torch

from sia_core.figures import heatmap


def test_a_heatmap_sends_its_colour_scale_as_rgb_stops():
    # Inferno's first stop "#000004" reached Chromium as pink, so an attack map's zeros looked bright: rgb() stops
    scale = heatmap(torch.rand(4, 4), title="RoA", colorscale="Inferno").data[0].colorscale
    assert scale[0] == (0.0, "rgb(0, 0, 4)") and not any(color.startswith("#") for _, color in scale)
    assert len(scale) == len(plotly.colors.get_colorscale("Inferno"))
