"""Figures and image conversions shared by the pages; pure functions of tensors, no Streamlit."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image


def to_pil(image: torch.Tensor, upscale: int = 1) -> Image.Image:
    """A (C, H, W) or (1, C, H, W) tensor in [0, 1] as an 8-bit PIL image, optionally upscaled (nearest)."""
    if image.ndim == 4:
        image = image[0]
    array = (image.detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    pil = Image.fromarray(array[0], mode="L") if array.shape[0] == 1 else Image.fromarray(array.transpose(1, 2, 0), mode="RGB")
    if upscale > 1:
        pil = pil.resize((pil.width * upscale, pil.height * upscale), Image.Resampling.NEAREST)
    return pil


def probability_bars(probabilities: torch.Tensor, class_names: Sequence[str], *, true_label: int | None = None,
                     title: str = "") -> go.Figure:
    """Horizontal bars of class probabilities; the predicted class is dark, the true class outlined."""
    values = probabilities.detach().cpu().flatten().tolist()
    predicted = int(np.argmax(values))
    colors = ["#1f4e79" if i == predicted else "#9db4cf" for i in range(len(values))]
    line_widths = [3 if i == true_label else 0 for i in range(len(values))]
    figure = go.Figure(go.Bar(x=values, y=list(class_names), orientation="h", marker_color=colors,
                              marker_line_color="#d62728", marker_line_width=line_widths,
                              hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    figure.update_layout(title=title or None, xaxis_range=[0, 1], xaxis_title="probability",
                         yaxis_autorange="reversed", height=40 + 24 * len(values), margin=dict(l=10, r=10, t=30, b=10))
    return figure
