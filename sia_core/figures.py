"""Figures and image conversions shared by the pages; pure functions of tensors, no Streamlit."""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import torch
from PIL import Image


def to_pil(image: torch.Tensor, upscale: int = 1, *, width_px: int | None = None) -> Image.Image:
    """A (C, H, W) or (1, C, H, W) tensor in [0, 1] as an 8-bit PIL image, optionally upscaled (nearest): by
    `upscale`, or to about `width_px` wide whatever the image's size (see `display_upscale`)."""
    if image.ndim == 4:
        image = image[0]
    if width_px is not None:
        upscale = display_upscale(image.shape, width_px)
    array = (image.detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    pil = Image.fromarray(array[0], mode="L") if array.shape[0] == 1 else Image.fromarray(array.transpose(1, 2, 0), mode="RGB")
    if upscale > 1:
        pil = pil.resize((pil.width * upscale, pil.height * upscale), Image.Resampling.NEAREST)
    return pil


def display_upscale(image_shape: Sequence[int], target_px: int = 168) -> int:
    """Nearest-neighbour factor that shows an image about `target_px` wide with crisp pixels: 6 at 28 px, 1 from
    168 px up (a 224 px image needs none)."""
    return max(1, target_px // min(int(image_shape[-2]), int(image_shape[-1])))


def probability_bars(probabilities: torch.Tensor, class_names: Sequence[str], *, true_label: int | None = None,
                     title: str = "", max_classes: int = 20) -> go.Figure:
    """Horizontal bars of class probabilities; the predicted class is dark, the true class outlined.

    With more than `max_classes` classes (ImageNet's 1,000) only the most probable ones are drawn, most probable
    first, plus the true class wherever it ranks."""
    all_values = probabilities.detach().cpu().flatten()
    shown = list(range(len(all_values)))
    if len(shown) > max_classes:
        keep = set(torch.topk(all_values, max_classes).indices.tolist())
        if true_label is not None:
            keep.add(true_label)
        shown = sorted(keep, key=lambda i: -float(all_values[i]))
    values = all_values[shown].tolist()
    predicted = shown[int(np.argmax(values))]
    colors = ["#1f4e79" if i == predicted else "#9db4cf" for i in shown]
    line_widths = [3 if i == true_label else 0 for i in shown]
    figure = go.Figure(go.Bar(x=values, y=[class_names[i] for i in shown], orientation="h", marker_color=colors,
                              marker_line_color="#d62728", marker_line_width=line_widths,
                              hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    # dtick 1: every class keeps its label, however short the chart (plotly skips some by default)
    figure.update_layout(title=title or None, xaxis_range=[0, 1], xaxis_title="probability",
                         yaxis=dict(autorange="reversed", dtick=1, automargin=True), height=60 + 26 * len(values),
                         margin=dict(l=10, r=10, t=30, b=10))
    return figure


def attribute_bars(values: dict[str, float], *, title: str, value_label: str, highlight: str | None = None,
                   secondary: dict[str, float] | None = None, secondary_label: str = "") -> go.Figure:
    """Bars per attribute, tallest first; an optional second series beside them (e.g. success rate)."""
    names = sorted(values, key=values.get, reverse=True)
    figure = go.Figure(go.Bar(x=names, y=[values[n] for n in names], name=value_label,
                              marker_color=["#d62728" if n == highlight else "#1f4e79" for n in names],
                              hovertemplate="%{x}: %{y:.3f}<extra>" + value_label + "</extra>"))
    if secondary:
        figure.add_bar(x=names, y=[secondary.get(n, 0.0) for n in names], name=secondary_label, marker_color="#9db4cf",
                       hovertemplate="%{x}: %{y:.3f}<extra>" + secondary_label + "</extra>")
    # one axis holds both series, so its title names both (the legend tells the bars apart)
    figure.update_layout(title=title, yaxis_title=f"{value_label} / {secondary_label}" if secondary else value_label,
                         barmode="group", height=360, margin=dict(l=10, r=10, t=40, b=10),
                         legend=dict(orientation="h", y=1.1))
    return figure


def success_rate_bars(rates: dict[str, float], labels: dict[str, str], *, title: str) -> go.Figure:
    figure = go.Figure(go.Bar(x=[labels.get(k, k) for k in rates], y=list(rates.values()),
                              text=[f"{v:.0%}" for v in rates.values()], textposition="outside",
                              marker_color=["#d62728" if k == "sia" else "#1f4e79" for k in rates]))
    figure.update_layout(title=title, yaxis_range=[0, 1.1], yaxis_title="attack success rate", height=340,
                         margin=dict(l=10, r=10, t=40, b=10))
    return figure


# a colour per attribute line, more than the default cycle's ten (an RGB world has thirteen), none as dark as the
# loss's or NME's line
_ATTRIBUTE_PALETTE = [color for color in plotly.colors.qualitative.Dark24 if color != "#222A2A"]


def attack_history_figure(history: dict[str, list[float]], attribute_names: Sequence[str],
                          labels: Optional[Mapping[str, str]] = None,
                          scales: Optional[Mapping[str, float]] = None) -> go.Figure:
    """Per-step loss (left axis) and true-class probability (right axis, 0–1), and each attribute's value (bottom,
    named as the sliders name it). With `scales` (each attribute's largest reach, e.g. 30 degrees of rotation) the
    values are drawn as signed shares of their range, so degrees, pixels and log-factors share one axis fairly."""
    from plotly.subplots import make_subplots

    labels, scales = labels or {}, scales or {}
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                           subplot_titles=("loss and true-class probability",
                                           "how far each attribute went" if scales else "attribute values"),
                           specs=[[{"secondary_y": True}], [{"secondary_y": False}]])
    steps = list(range(len(history.get("loss", []))))
    # one colour per line: the default cycle of ten gave an RGB world's thirteen attributes the loss's colours
    figure.add_scatter(x=steps, y=history.get("loss", []), name="loss (cross-entropy)", row=1, col=1,
                       line=dict(color="#222222", width=3))
    figure.add_scatter(x=steps, y=history.get("true_class_probability", []), name="p(true class)", row=1, col=1,
                       secondary_y=True, line=dict(color="#888888", width=3))
    for index, name in enumerate(attribute_names):
        scale = scales.get(name) or 1.0
        figure.add_scatter(x=steps, y=[value / scale for value in history.get(f"attribute/{name}", [])],
                           name=labels.get(name, name), row=2, col=1,
                           line=dict(dash="dot", color=_ATTRIBUTE_PALETTE[index % len(_ATTRIBUTE_PALETTE)]))
    figure.update_layout(height=520, margin=dict(l=10, r=10, t=40, b=10),
                         legend=dict(orientation="h", yanchor="top", y=-0.12))  # below, clear of the titles
    figure.update_yaxes(title_text="loss", row=1, col=1, secondary_y=False)
    # a little above 1, so a probability of 1 is a line of its own, not the frame
    figure.update_yaxes(title_text="p(true class)", range=[0, 1.05], dtick=0.25, row=1, col=1, secondary_y=True)
    figure.update_yaxes(title_text="share of its range" if scales else "value", row=2, col=1,
                        **({"range": [-1.05, 1.05], "tickformat": ".0%"} if scales else {}))
    figure.update_xaxes(title_text="step", row=2, col=1)
    return figure


def amplified_perturbation(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Map a perturbation in [-eps, eps] to [0, 1] (gray = unchanged) so a tiny delta becomes visible."""
    scale = 0.5 / eps if eps > 0 else 1.0
    return (0.5 + delta * scale).clamp(0, 1)


ZONE_COLORS = ("#f0f0f0", "#d62728", "#1f77b4", "#9467bd")  # neither, attacked only, important only, both
ZONE_NAMES = ("neither", "attacked only (vulnerable, unimportant)", "important only", "important and attacked")


def rgb_colorscale(name: str) -> list[list]:
    """A named plotly colour scale as explicit rgb() stops. Its hex stops are not all drawn as written in the app:
    Inferno's first, "#000004", reached Chromium as pink (measured), so an attack map's exact zeros looked brighter
    than its small effects; the same colour as rgb(0, 0, 4) is drawn black."""
    return [[position, plotly.colors.label_rgb(plotly.colors.hex_to_rgb(color)) if color.startswith("#") else color]
            for position, color in plotly.colors.get_colorscale(name)]


def heatmap(values: torch.Tensor, *, title: str, zmax: float | None = None, colorscale: str = "Viridis") -> go.Figure:
    """An (H, W) map as a square heatmap; pass `zmax` to share one colour scale between maps."""
    figure = go.Figure(go.Heatmap(z=values.detach().cpu().numpy(), colorscale=rgb_colorscale(colorscale), zmin=0,
                                  zmax=zmax if zmax is not None else float(values.max()) or 1.0,
                                  hovertemplate="row %{y}, col %{x}: %{z:.4f}<extra></extra>"))
    figure.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10),
                         yaxis=dict(autorange="reversed", scaleanchor="x", showticklabels=False),
                         xaxis=dict(showticklabels=False))
    return figure


def zone_overlay(zone_map: torch.Tensor, image: torch.Tensor, *, title: str) -> go.Figure:
    """The four zones as colours over the gray image, so the regions stay readable against the picture."""

    gray = image.detach().cpu()
    gray = gray.mean(0) if gray.ndim == 3 else gray
    figure = go.Figure()
    figure.add_trace(go.Heatmap(z=gray.numpy(), colorscale="gray", showscale=False, hoverinfo="skip"))
    z = zone_map.detach().cpu().numpy().astype(float)
    scale = [[i / 3, ZONE_COLORS[i]] for i in range(4)]
    figure.add_trace(go.Heatmap(z=z, colorscale=scale, zmin=0, zmax=3, opacity=0.55, showscale=False,
                                customdata=[[ZONE_NAMES[int(v)] for v in row] for row in z],
                                hovertemplate="row %{y}, col %{x}: %{customdata}<extra></extra>"))
    figure.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10),
                         yaxis=dict(autorange="reversed", scaleanchor="x", showticklabels=False),
                         xaxis=dict(showticklabels=False))
    return figure


def histogram(values: torch.Tensor, *, title: str, x_label: str, bins: int = 20) -> go.Figure:
    figure = go.Figure(go.Histogram(x=values.detach().cpu().numpy(), nbinsx=bins, marker_color="#1f4e79"))
    figure.update_layout(title=title, xaxis_title=x_label, yaxis_title="images", height=300,
                         margin=dict(l=10, r=10, t=40, b=10))
    return figure


def curves(series: dict[str, list[tuple[float, float]]], labels: dict[str, str], *, title: str, x_label: str,
           y_label: str) -> go.Figure:
    figure = go.Figure()
    for key, points in series.items():
        figure.add_scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                           name=labels.get(key, key))
    figure.update_layout(title=title, xaxis_title=x_label, yaxis_title=y_label, height=380,
                         margin=dict(l=10, r=10, t=40, b=10))
    return figure


def transfer_scatter(points: Sequence[dict], *, title: str,
                     seeds: Optional[Mapping[int, Sequence[dict]]] = None, chance: Optional[float] = None) -> go.Figure:
    """One labelled point per architecture: accuracy when trained on D̂_det (x) against transfer success (y); where
    the points are the mean of several training seeds, each seed's own (seed -> points) as hollow markers, tied to
    its architecture's mean by a thin line; `chance` (1 / classes) as a dashed vertical line."""
    seeds = seeds or {}
    figure = go.Figure()
    ties_x: list[Optional[float]] = []
    ties_y: list[Optional[float]] = []
    for replicate in seeds.values():  # each seed's point to its architecture's mean, so an unlabelled one is placed
        for mean, own in zip(points, replicate):
            ties_x += [mean["accuracy_from_det"], own["accuracy_from_det"], None]
            ties_y += [mean["transfer_success"], own["transfer_success"], None]
    if ties_x:
        figure.add_scatter(x=ties_x, y=ties_y, mode="lines", line=dict(color="#b0b7c0", width=1), hoverinfo="skip",
                           showlegend=False)
    if chance is not None:
        figure.add_vline(x=chance, line_dash="dash", line_color="#d62728", annotation_text=f"chance {chance:.0%}",
                         annotation_position="bottom right")
    figure.add_trace(go.Scatter(
        x=[p["accuracy_from_det"] for p in points], y=[p["transfer_success"] for p in points],
        mode="markers", text=[p["architecture"] for p in points],
        marker=dict(size=12, color="#1f4e79"), name=f"mean of {len(seeds)} seeds" if seeds else "",
        showlegend=bool(seeds),
        hovertemplate="%{text}: D̂_det accuracy %{x:.1%}, transfer %{y:.1%}<extra></extra>"))
    # one hollow shape per seed, so the legend tells the seeds apart
    shapes = ("circle-open", "diamond-open", "square-open", "triangle-up-open", "x-open")
    for index, (seed, replicate) in enumerate(seeds.items()):
        figure.add_scatter(x=[p["accuracy_from_det"] for p in replicate], y=[p["transfer_success"] for p in replicate],
                           mode="markers", text=[p["architecture"] for p in replicate], name=f"seed {seed}",
                           marker=dict(size=11, color="#1f4e79", symbol=shapes[index % len(shapes)],
                                       line=dict(width=2)),
                           hovertemplate="%{text}: D̂_det accuracy %{x:.1%}, transfer %{y:.1%}<extra>seed "
                                         f"{seed}</extra>")
    # each name on the side of its point away from its seeds' markers (above, below, left or right), over a pale box
    everyone = [*points, *(own for replicate in seeds.values() for own in replicate)]
    xs, ys = [p["accuracy_from_det"] for p in everyone], [p["transfer_success"] for p in everyone]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    sides = {"above": (0, 1), "below": (0, -1), "right": (1, 0), "left": (-1, 0)}
    for index, point in enumerate(points):
        offsets = [((own[index]["accuracy_from_det"] - point["accuracy_from_det"]) / span_x,
                    (own[index]["transfer_success"] - point["transfer_success"]) / span_y) for own in seeds.values()]
        side = max(sides, key=lambda name: min((math.hypot(0.05 * sides[name][0] - dx, 0.05 * sides[name][1] - dy)
                                                for dx, dy in offsets), default=1.0))
        dx, dy = sides[side]
        figure.add_annotation(x=point["accuracy_from_det"], y=point["transfer_success"], text=point["architecture"],
                              showarrow=False, xshift=12 * dx, yshift=15 * dy, font=dict(size=11),
                              xanchor={1: "left", -1: "right", 0: "center"}[dx], bgcolor="rgba(255, 255, 255, 0.8)")
    figure.update_layout(title=title, xaxis_title="test accuracy of the model trained on D̂_det",
                         yaxis_title="transfer success of the source's attack", xaxis_tickformat=".1%",
                         yaxis_tickformat=".0%", height=380, margin=dict(l=10, r=10, t=40, b=10))
    return figure


def class_success_bars(series: Mapping[str, Sequence[Mapping]], *, goal: float, title: str) -> go.Figure:
    """Grouped bars of a rate per true class with its 95% interval, one group per class and one bar per series
    (`series`: label -> rows with source_class, rate, rate_ci95), and a dashed line at `goal`."""
    from sia_core.claims import rate_interval  # here: claims reads every study's modules, figures none of them

    figure = go.Figure()
    for label, rows in series.items():
        intervals = [rate_interval(row["rate"], row["attempts"], row.get("rate_ci95")) for row in rows]
        figure.add_bar(x=[row["source_class"] for row in rows], y=[row["rate"] for row in rows], name=label,
                       error_y=dict(type="data", symmetric=False,
                                    array=[high - row["rate"] for row, (_, high) in zip(rows, intervals)],
                                    arrayminus=[row["rate"] - low for row, (low, _) in zip(rows, intervals)]),
                       customdata=[[row.get("target_class") or "another class", row["reached"], row["attempts"]]
                                   for row in rows],
                       hovertemplate="%{x} → %{customdata[0]}: %{y:.1%} (%{customdata[1]:,} of %{customdata[2]:,})"
                                     "<extra>" + label + "</extra>")
    figure.add_hline(y=goal, line_dash="dash", line_color="#d62728", annotation_text=f"{goal:.0%}",
                     annotation_position="top left")
    figure.update_layout(title=title, barmode="group", yaxis_range=[0, 1.05], yaxis_tickformat=".0%",
                         xaxis_title="true class of the attacked image", yaxis_title="reached its target",
                         height=420, margin=dict(l=10, r=10, t=40, b=10), legend=_LEGEND_BELOW)
    return figure


def margin_scatter(input_margins: torch.Tensor, logit_margins: torch.Tensor, correct: torch.Tensor,
                   labels: torch.Tensor, class_names: Sequence[str], *, eps: float, norm: str) -> go.Figure:
    """Input margin (x) against logit margin (y), one point per image, misclassified in red; each point carries
    its sample index as `customdata[0]` (what a selection reads) and a dashed line marks eps. An L∞ margin is drawn
    in 255ths, the unit the ε slider beside it uses; an L2 margin as a length."""
    scale, unit = _margin_units(norm)
    figure = go.Figure()
    for is_correct, color, name in ((True, "#1f4e79", "correct"), (False, "#d62728", "misclassified")):
        members = (correct == is_correct).nonzero().squeeze(1)
        figure.add_scatter(
            x=input_margins[members].numpy() * scale, y=logit_margins[members].numpy(), mode="markers", name=name,
            marker=dict(color=color, size=5, opacity=0.6),
            customdata=[[int(i), class_names[int(labels[i])]] for i in members],
            hovertemplate="sample %{customdata[0]} (%{customdata[1]})<br>input margin %{x:.3g}"
                          + ("/255" if norm == "linf" else "") + "<br>logit margin %{y:.3f}<extra></extra>")
    figure.add_vline(x=eps * scale, line_dash="dash", line_color="gray")
    figure.update_layout(xaxis_title=f"input margin{unit}", yaxis_title="logit margin", height=360,
                         margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=1.08))
    return figure


# a legend under the plot: long model names then take a line of their own instead of the plot's width
_LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0)


def _margin_units(norm: Optional[str]) -> tuple[float, str]:
    """How an input margin in `norm` is drawn: L∞ in 255ths, the unit of the pages' ε sliders; L2 as a length."""
    return (255.0, " (L∞, in /255)") if norm == "linf" else (1.0, " (L2)") if norm == "l2" else (1.0, "")


def binned_margin_curves(curves_by_name: dict[str, dict[str, list]], norm: Optional[str] = None) -> go.Figure:
    """Median normalized logit margin per input-margin bin with its standard error, one line per model
    (`curves_by_name`: legend name -> `sia_core.margins.binned_median_curve`'s dict); an L∞ margin in 255ths, as
    `margin_scatter` draws it."""
    scale, unit = _margin_units(norm)
    figure = go.Figure()
    for name, curve in curves_by_name.items():
        figure.add_scatter(x=[center * scale for center in curve["centers"]], y=curve["median"],
                           error_y=dict(array=curve["stderr"]), mode="lines+markers", name=name)
    figure.update_layout(title="Median logit margin by input margin (5–95% kept)",
                         xaxis_title=f"input margin{unit}", yaxis_title="normalized logit margin", height=400,
                         margin=dict(l=10, r=10, t=40, b=10), legend=_LEGEND_BELOW)
    return figure


def roc_curves(rocs: dict[str, tuple[np.ndarray, np.ndarray]], *, title: str) -> go.Figure:
    """ROC curves (`rocs`: legend name -> (FPR, TPR)) with the chance diagonal."""
    figure = go.Figure()
    for name, (fpr, tpr) in rocs.items():
        figure.add_scatter(x=fpr, y=tpr, mode="lines", name=name)
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="gray"), name="chance")
    figure.update_layout(title=title, xaxis_title="FPR", yaxis_title="TPR", height=400,
                         margin=dict(l=10, r=10, t=40, b=10), legend=_LEGEND_BELOW)
    return figure


def accuracy_bars(names: Sequence[str], series: dict[str, Sequence[float]], *, title: str,
                  grey: Sequence[str] = ()) -> go.Figure:
    """Grouped accuracy bars in [0, 1], one group per name and one bar per series (those in `grey` drawn grey,
    e.g. a paper's numbers beside this run's); the axis in percent, as the tables beside it."""
    figure = go.Figure()
    for series_name, values in series.items():
        figure.add_bar(x=list(names), y=list(values), name=series_name,
                       marker_color="#bbbbbb" if series_name in grey else None,
                       hovertemplate="%{x}: %{y:.1%}<extra>" + series_name + "</extra>")
    figure.update_layout(barmode="group", yaxis_range=[0, 1], yaxis_tickformat=".0%", yaxis_title="accuracy",
                         height=380, margin=dict(l=10, r=10, t=30, b=10), title=title)
    return figure


def success_vs_ssim_figure(curves_by_attack: dict[str, list[tuple[float, float]]], labels: dict[str, str], *,
                           title: str) -> go.Figure:
    """Success rate against an SSIM floor, one line per attack (`curves_by_attack`: name -> (threshold, share of
    the attacked images fooled with SSIM >= threshold)); SIA drawn red as in `success_rate_bars`."""
    figure = go.Figure()
    for key, points in curves_by_attack.items():
        figure.add_scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                           name=labels.get(key, key), line=dict(color="#d62728", width=3) if key == "sia" else None,
                           hovertemplate="SSIM ≥ %{x:.2f}: %{y:.0%} fooled<extra>" + labels.get(key, key) + "</extra>")
    figure.update_layout(title=title, xaxis_title="SSIM at least (1 = identical to the original)",
                         yaxis_title="attack success rate", yaxis_range=[0, 1.05], yaxis_tickformat=".0%",
                         height=380, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=1.1))
    return figure


def zoo_figure(points: Sequence[dict], paper_points: Sequence[dict], *, score: str = "kendall_tau") -> go.Figure:
    """The zoo: one point per model, robust accuracy (x) against `score` ("kendall_tau" or "auroc"); with τ, the
    pseudo-margin's τ is drawn as an open circle joined to it. Each of our points carries its model id as
    `customdata[0]` (what a selection reads). The paper's points (another dataset and ε) are diamonds."""
    label = {"kendall_tau": "Kendall τ (input vs logit margin)", "auroc": "AUROC (detecting non-robust inputs)"}[score]
    figure = go.Figure()
    ours = [p for p in points if p.get(score) is not None]
    if score == "kendall_tau":
        for p in ours:
            figure.add_scatter(x=[p["robust_accuracy"]] * 2, y=[p["kendall_tau"], p["pseudo_kendall_tau_after"]],
                               mode="lines", line=dict(color="#9ab", dash="dot"), showlegend=False, hoverinfo="skip")
        figure.add_scatter(x=[p["robust_accuracy"] for p in ours], y=[p["pseudo_kendall_tau_after"] for p in ours],
                           mode="markers", name="ours, pseudo-margin", hoverinfo="skip",
                           marker=dict(symbol="circle-open", size=11, color="#1f4e79"))
    # a point's x is AutoAttack's robust accuracy where its card has one (`axis`), else the margin search's (squares)
    shown = [p for p in paper_points if p.get("robust_accuracy") is not None and p.get(score) is not None]
    every_x = [p["robust_accuracy"] for p in [*ours, *shown]] or [0.0]
    pseudo = [(p["robust_accuracy"], p["pseudo_kendall_tau_after"]) for p in ours if score == "kendall_tau"]
    every_y = [p[score] for p in [*ours, *shown]] + [y for _, y in pseudo] or [0.0]
    x_span, y_span = max(max(every_x) - min(every_x), 0.1), max(max(every_y) - min(every_y), 0.1)
    # room around the points for their names (at the plot's edge a name was cut: "far10-standard"), and each name
    # placed where it covers no other name or marker (a cluster of Fashion-MNIST's robust models printed over itself)
    x_range = (min(every_x) - 0.3 * x_span, max(every_x) + 0.3 * x_span)
    y_range = (min(every_y) - 0.15 * y_span, max(every_y) + 0.15 * y_span)
    named = [(p["robust_accuracy"], p[score]) for p in ours] + [(p["robust_accuracy"], p[score]) for p in shown]
    sides = place_labels(named, [p["model_id"] for p in ours] + [p["model"] for p in shown], x_range, y_range,
                         obstacles=pseudo)
    figure.add_scatter(
        x=[p["robust_accuracy"] for p in ours], y=[p[score] for p in ours], mode="markers+text", name="ours",
        text=[p["model_id"] for p in ours], textposition=sides[:len(ours)],
        marker=dict(size=12, color="#1f4e79", symbol=["circle" if p.get("axis", "margin search") == "AutoAttack"
                                                      else "square" for p in ours]),
        customdata=[[p["model_id"], p["recipe"], p["clean_accuracy"], p.get("axis", "margin search"),
                     p["kendall_tau"], p.get("auroc"), p["pseudo_kendall_tau_after"]] for p in ours],
        hovertemplate="<b>%{customdata[0]}</b> (%{customdata[1]})<br>clean %{customdata[2]:.1%} · robust "
                      "%{x:.1%} (%{customdata[3]})<br>τ %{customdata[4]:.2f} → pseudo-margin "
                      "%{customdata[6]:.2f} · AUROC %{customdata[5]:.3f}<extra></extra>")
    if shown:
        figure.add_scatter(x=[p["robust_accuracy"] for p in shown], y=[p[score] for p in shown], mode="markers+text",
                           name="paper (CIFAR-10, ε = 8/255)", text=[p["model"] for p in shown],
                           textposition=sides[len(ours):], marker=dict(symbol="diamond", size=11, color="#d62728"),
                           hovertemplate="paper: %{text}<br>robust %{x:.1%} · " + score + " %{y:.2f}<extra></extra>")
    axes = {p.get("axis", "margin search") for p in ours}
    across = ("AutoAttack" if axes == {"AutoAttack"} else "our margin search" if axes == {"margin search"} else
              "AutoAttack; squares: our margin search")
    # accuracy ticks from 0 only (the room left of 0% is for names, not a negative accuracy), at a step the range
    # holds several of: a cluster between 45% and 55% gets 5-point ticks, not none
    step = next(step for step in (0.05, 0.1, 0.2, 0.25) if (x_range[1] - x_range[0]) / step <= 8)
    ticks = [round(index * step, 4) for index in range(int(1 / step) + 1) if x_range[0] <= index * step <= x_range[1]]
    figure.update_layout(xaxis_title=f"robust accuracy ({across})", yaxis_title=label, xaxis_tickformat=".0%",
                         xaxis_range=list(x_range), yaxis_range=list(y_range), xaxis_tickvals=ticks,
                         height=420, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=1.08))
    return figure


# where a name may go beside its marker, in the order tried: plotly's textposition and the box's offset from the
# marker's centre (in units of the box's width and height, and of the marker's radius)
_LABEL_SPOTS = (("top center", -0.5, 0.0, 0, 1), ("bottom center", -0.5, -1.0, 0, -1),
                ("middle right", 0.0, -0.5, 1, 0), ("middle left", -1.0, -0.5, -1, 0),
                ("top right", 0.0, 0.0, 1, 1), ("top left", -1.0, 0.0, -1, 1),
                ("bottom right", 0.0, -1.0, 1, -1), ("bottom left", -1.0, -1.0, -1, -1))


def place_labels(points: Sequence[tuple[float, float]], names: Sequence[str], x_range: tuple[float, float],
                 y_range: tuple[float, float], *, obstacles: Sequence[tuple[float, float]] = (),
                 size_px: tuple[float, float] = (480.0, 300.0), char_px: float = 6.6, line_px: float = 14.0,
                 marker_px: float = 8.0) -> list[str]:
    """A textposition per named point, chosen greedily so that names overlap neither each other nor any marker
    (`points` and `obstacles`, in data units) and stay inside the plot: each name takes the first spot of
    `_LABEL_SPOTS` that is free, else the one that overlaps least. The plot's size in pixels is an estimate
    (`size_px`), as is a character's width: enough to keep names apart, not to typeset them."""
    (x0, x1), (y0, y1) = x_range, y_range
    width, height = size_px

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (x - x0) / ((x1 - x0) or 1.0) * width, (y - y0) / ((y1 - y0) or 1.0) * height

    def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    half = marker_px / 2
    taken = [(px - half, py - half, px + half, py + half)
             for px, py in (to_px(x, y) for x, y in [*points, *obstacles])]
    sides = []
    for (x, y), name in zip(points, names):
        centre, size = to_px(x, y), (len(name) * char_px, line_px)
        best, best_cost = _LABEL_SPOTS[0][0], math.inf
        for side, *_ in _LABEL_SPOTS:
            box = label_box(centre, size, side, marker_px)
            outside = (max(0.0, -box[0]) + max(0.0, box[2] - width)) * size[1] + (
                max(0.0, -box[1]) + max(0.0, box[3] - height)) * size[0]
            cost = sum(overlap(box, other) for other in taken) + outside
            if cost < best_cost:
                best, best_cost = side, cost
            if cost == 0:
                break
        taken.append(label_box(centre, size, best, marker_px))
        sides.append(best)
    return sides


def label_box(centre: tuple[float, float], size: tuple[float, float], side: str,
              marker_px: float = 8.0) -> tuple[float, float, float, float]:
    """The box (left, bottom, right, top, in pixels, y up) a name of `size` takes at `side` of a marker centred at
    `centre`: `place_labels`' model of where plotly's textposition puts it."""
    _, fx, fy, sx, sy = next(spot for spot in _LABEL_SPOTS if spot[0] == side)
    gap = marker_px / 2 + 2
    left, bottom = centre[0] + fx * size[0] + sx * gap, centre[1] + fy * size[1] + sy * gap
    return left, bottom, left + size[0], bottom + size[1]


def estimate_error_figure(errors: dict[str, dict[int, tuple[float, float]]], *, reference: float = 0.02) -> go.Figure:
    """The sample-efficient estimate's absolute error against the full attack (mean ± std over repeated subsets) by
    the number of attacked images, one line per model (`errors`: name -> size -> (mean, std)), and the paper's
    2-point reference line."""
    # in points: the error is a difference of two accuracies (as the zoo's takeaway and its claim state it)
    figure = go.Figure()
    for name, by_size in errors.items():
        sizes = sorted(by_size)
        figure.add_scatter(x=sizes, y=[100 * by_size[s][0] for s in sizes],
                           error_y=dict(array=[100 * by_size[s][1] for s in sizes]), mode="lines+markers", name=name,
                           hovertemplate="%{x:,} attacked: %{y:.1f} points<extra>" + name + "</extra>")
    figure.add_hline(y=100 * reference, line_dash="dash", line_color="gray",
                     annotation_text=f"{100 * reference:g}-point reference", annotation_position="bottom left")
    # the log axis ticked at the sizes measured, not at plotly's 2-5-10 pattern (which hides 10 and 1000)
    measured = sorted({size for by_size in errors.values() for size in by_size})
    figure.update_layout(xaxis=dict(title="images attacked", type="log", tickvals=measured,
                                    ticktext=[f"{size:,}" for size in measured]),
                         yaxis_title="|estimate − full attack| (points)", height=380,
                         margin=dict(l=10, r=10, t=10, b=10))
    return figure


KEYPOINT_STYLES = {"reference": dict(symbol="circle-open", size=14, color="#2ca02c", line=dict(width=3)),
                   "predicted": dict(symbol="x", size=11, color="#d62728"),
                   "clean prediction": dict(symbol="x", size=11, color="#1f77b4")}


def keypoint_figure(image: torch.Tensor, points: Mapping[str, torch.Tensor], point_names: Sequence[str], *,
                    title: str = "", height: int = 340) -> go.Figure:
    """An image with sets of K landmarks drawn over it: `points` maps a set's name ("reference", "predicted", ...)
    to (K, 2) (x, y) fractions of the width and height (y down); hovering a mark names the point."""
    picture = image.detach().cpu()
    picture = picture[0] if picture.ndim == 4 else picture
    if picture.shape[0] == 1:
        picture = picture.expand(3, -1, -1)
    height_px, width_px = picture.shape[1:]
    rgb = (picture.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    figure = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    for name, values in points.items():
        xy = values.detach().cpu().reshape(-1, 2)
        # a fraction f of the width is the continuous coordinate f·W; go.Image centres pixel i at i
        figure.add_scatter(x=(xy[:, 0] * width_px - 0.5).tolist(), y=(xy[:, 1] * height_px - 0.5).tolist(),
                           mode="markers", name=name, text=list(point_names),
                           marker=KEYPOINT_STYLES.get(name, dict(symbol="diamond", size=10)),
                           hovertemplate="%{text}: (%{x:.1f}, %{y:.1f}) px<extra>" + name + "</extra>")
    figure.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                         legend=dict(orientation="h", y=-0.02), xaxis=dict(showticklabels=False, range=[-0.5, width_px - 0.5]),
                         yaxis=dict(showticklabels=False, range=[height_px - 0.5, -0.5], scaleanchor="x"))
    return figure


def nme_history_figure(history: Mapping[str, list[float]], attribute_names: Sequence[str],
                       labels: Optional[Mapping[str, str]] = None, threshold: float = 0.1,
                       scales: Optional[Mapping[str, float]] = None) -> go.Figure:
    """A keypoint attack's steps: the mean NME (with the failure threshold) and each attribute's value, as a signed
    share of its range where `scales` (each attribute's largest reach) is given, as `attack_history_figure` draws
    them: degrees, pixels and log-factors on one axis fairly."""
    from plotly.subplots import make_subplots

    labels, scales = labels or {}, scales or {}
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=("NME from the reference points",
                                           "how far each attribute went" if scales else "attribute values"))
    steps = list(range(len(history.get("nme", []))))
    figure.add_scatter(x=steps, y=history.get("nme", []), name="NME", row=1, col=1,
                       line=dict(color="#222222", width=3))
    figure.add_hline(y=threshold, line=dict(dash="dash", color="gray"), annotation_text=f"failure: NME > {threshold:g}",
                     row=1, col=1)
    for index, name in enumerate(attribute_names):
        scale = scales.get(name) or 1.0
        figure.add_scatter(x=steps, y=[value / scale for value in history.get(f"attribute/{name}", [])],
                           name=labels.get(name, name), row=2, col=1,
                           line=dict(dash="dot", color=_ATTRIBUTE_PALETTE[index % len(_ATTRIBUTE_PALETTE)]))
    figure.update_layout(height=480, margin=dict(l=10, r=10, t=40, b=10))
    figure.update_yaxes(title_text="NME", row=1, col=1)
    figure.update_yaxes(title_text="share of its range" if scales else "value", row=2, col=1,
                        **({"range": [-1.05, 1.05], "tickformat": ".0%"} if scales else {}))
    figure.update_xaxes(title_text="step", row=2, col=1)
    return figure
