"""Page reports: one self-contained HTML with the interactive figures, tables, card, parameters, references and the
command; CSV per table; PNG per figure through plotly's own export (kaleido + the local Chromium)."""

from __future__ import annotations

import io
import zipfile

import plotly.graph_objects as go
import pytest

from sia_core.report import PageReport
from tests.app_server import chromium_path


def _report() -> PageReport:
    figure = go.Figure(go.Bar(x=["hue", "rotation"], y=[0.61, 0.2]), layout={"title": "Dominance <3"})
    return PageReport("Diagnosis of fmnist-standard", "Hue is the attribute that breaks this model most.",
                      figures=(("Dominance", figure), ("Again", figure)),
                      tables=(("Success", [{"attack": "SIA", "success rate": 0.9}, {"attack": "PGD", "success rate": 0.4}]),),
                      card={"id": "fmnist-standard"}, parameters={"n": 256, "eps_linf": 2 / 255},
                      references=("sia", "pgd"), command="python -m sia_core sia --model fmnist-standard --n 256")


def test_the_html_holds_everything_and_plotly_js_once():
    page = _report().to_html(created="2026-12-01 10:00")
    assert page.count("Plotly.newPlot") == 2 and page.count("plotly.js v") <= 2  # the library inlined once
    assert "<script src=" not in page  # nothing fetched from a CDN: the file works offline
    for text in ("Hue is the attribute", "<td>SIA</td>", "<td>0.9</td>", "python -m sia_core sia", "&quot;fmnist-standard&quot;",
                 "arxiv.org/abs/2303.13010", "Madry", "2026-12-01 10:00", "eps_linf"):
        assert text in page, text


def test_the_zip_holds_the_html_and_a_csv_per_table():
    archive = zipfile.ZipFile(io.BytesIO(_report().to_zip(with_png=False)))
    assert sorted(archive.namelist()) == ["report.html", "table-1-success.csv"]
    assert archive.read("table-1-success.csv").decode().splitlines() == ["attack,success rate", "SIA,0.9", "PGD,0.4"]


def test_a_png_per_figure_with_chromium():
    if chromium_path() is None:
        pytest.skip("PNG export drives a local Chromium (apt-get install chromium)")
    archive = zipfile.ZipFile(io.BytesIO(_report().to_zip()))
    pngs = [name for name in archive.namelist() if name.endswith(".png")]
    assert pngs == ["figure-1-dominance.png", "figure-2-again.png"]
    assert all(archive.read(name).startswith(b"\x89PNG") and len(archive.read(name)) > 5000 for name in pngs)


def test_exported_figures_keep_a_colour_per_trace_and_room_for_their_labels():
    import streamlit  # noqa: F401  (the app's import makes Streamlit's stand-in-colour template the default)
    import plotly.graph_objects as go
    import plotly.io as pio

    from sia_core.report import exportable

    assert pio.templates.default == "streamlit"
    figure = go.Figure([go.Scatter(y=[1, 2], name=name) for name in ("oracle", "dataset", "class", "random", "roi")])
    exported = exportable(figure)
    colorway = exported.layout.template.layout.colorway
    assert len(set(colorway[:5])) == 5 and not any(color.startswith("#0000") for color in colorway)
    assert exported.layout.margin.l >= 80 and exported.layout.xaxis.automargin and exported.layout.yaxis.automargin
    assert figure.layout.template.layout.colorway[0] == "#000001"  # the page's own figure is left as it is
    html = PageReport("t", figures=(("five masks", figure),)).to_html("2026-12-04")
    assert '"colorway":["#636efa"' in html.replace(" ", "")


def test_the_exported_png_draws_each_trace_in_its_own_colour():
    if chromium_path() is None:
        pytest.skip("PNG export drives a local Chromium (apt-get install chromium)")
    import numpy as np
    import plotly.graph_objects as go
    import streamlit  # noqa: F401  (as in the app: Streamlit's stand-in-colour template is the default)
    from PIL import Image

    names = ("oracle", "dataset", "class", "random", "roi")
    figure = go.Figure([go.Scatter(x=[0, 1], y=[i, i + 0.5], name=name, mode="lines", line={"width": 6})
                        for i, name in enumerate(names)])
    archive = zipfile.ZipFile(io.BytesIO(PageReport("t", figures=(("five masks", figure),)).to_zip()))
    pixels = np.asarray(Image.open(io.BytesIO(archive.read("figure-1-five-masks.png"))).convert("RGB")).reshape(-1, 3)
    # saturated pixels (not white, grey or black text), rounded to absorb anti-aliasing; count the colours used widely
    saturated = pixels[(pixels.max(1).astype(int) - pixels.min(1)) > 60] // 32
    colours, counts = np.unique(saturated, axis=0, return_counts=True)
    assert (counts > 200).sum() >= len(names), dict(zip(map(tuple, colours), counts))


def test_a_reports_model_card_has_portable_commands_and_no_epoch_history():
    import json

    from sia_core.report import PageReport
    from tests.conftest import PROJECT_ROOT

    card = json.loads((PROJECT_ROOT / "assets" / "models" / "cifar10-standard" / "card.json").read_text())
    assert "../shared/data" in card["training"]["command"] and card["training"].get("history")
    page = PageReport("t", card=card).to_html(created="now")
    assert "--data-dir ../shared" not in page and '"history"' not in page and "--data-dir $CIFAR10_DIR" in page
