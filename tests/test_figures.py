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


def test_every_line_of_the_attack_history_has_its_own_colour():
    from sia_core.figures import attack_history_figure
    from sia_core.semantics import ATTRIBUTES

    names = list(ATTRIBUTES)  # thirteen, an RGB world's: more than the default cycle of ten
    history = {"loss": [0.1, 0.5], "true_class_probability": [1.0, 0.4],
               **{f"attribute/{name}": [0.0, 0.1] for name in names}}
    figure = attack_history_figure(history, names)
    colours = [trace.line.color for trace in figure.data]
    assert len(colours) == len(names) + 2 and len(set(colours)) == len(colours) and None not in colours


def test_names_are_placed_apart_and_inside_the_plot():
    from sia_core.figures import place_labels

    # two models side by side: their names cannot both sit above their markers, and their boxes do not meet
    from sia_core.figures import label_box

    sides = place_labels([(0.50, 0.50), (0.53, 0.50)], ["model-one", "model-two"], (0.0, 1.0), (0.0, 1.0))
    width, height = 480.0, 300.0  # place_labels' default estimate of the plot, in pixels
    first, second = (label_box((x * width, 0.5 * height), (9 * 6.6, 14.0), side)
                     for x, side in zip((0.50, 0.53), sides))
    assert sides[0] != sides[1]
    assert first[2] <= second[0] or second[2] <= first[0] or first[3] <= second[1] or second[3] <= first[1]
    # a point at the top right corner: its name goes below or left, inside the plot
    corner = place_labels([(0.99, 0.99)], ["a-long-model-name"], (0.0, 1.0), (0.0, 1.0))[0]
    assert corner.startswith("bottom") and not corner.endswith("right")
    # alone in the middle: above it
    assert place_labels([(0.5, 0.5)], ["alone"], (0.0, 1.0), (0.0, 1.0)) == ["top center"]


def test_a_keypoint_attacks_history_draws_each_attribute_as_a_share_of_its_range():
    from sia_core.figures import nme_history_figure

    history = {"nme": [0.05, 0.2], "attribute/rotation": [0.0, 15.0], "attribute/shift_x": [0.0, -2.0]}
    figure = nme_history_figure(history, ["rotation", "shift_x"], threshold=0.1,
                                scales={"rotation": 30.0, "shift_x": 4.0})
    lines = {trace.name: list(trace.y) for trace in figure.data}
    assert lines["rotation"] == [0.0, 0.5] and lines["shift_x"] == [0.0, -0.5]  # degrees and pixels on one scale
    assert figure.layout.yaxis2.tickformat == ".0%" and figure.layout.yaxis2.title.text == "share of its range"
