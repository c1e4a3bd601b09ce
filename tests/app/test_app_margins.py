"""The margin-consistency page through AppTest: compute, select a point, move ε, learn a pseudo-margin."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT_ROOT


def test_margins_page_end_to_end():
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/margins.py").run()
    assert not at.exception
    assert at.multiselect(key="margins_models").value == ["fmnist-standard", "fmnist-robust"]
    at.slider(key="margins_n").set_value(50)
    next(b for b in at.button if b.label == "Compute the margins").click().run()
    assert not at.exception
    headers = [m.value for m in at.markdown if "Kendall τ" in m.value and "Pearson r" in m.value]
    assert len(headers) == 2 and headers[0].startswith("**fmnist-standard**")
    # τ with its interval and its sample: the zoo measures the same model on other images
    import re

    for header in headers:
        tau, low, high = map(float, re.search(r"τ = \*\*([-0-9.]+)\*\* \[([-0-9.]+), ([-0-9.]+)\] on the first 50 "
                                               r"images", header).groups())
        assert low <= round(tau, 2) <= high
    # the zoo above measures the same models on its own 1,000 images, and the scorecard reads those: said here
    assert any("The zoo above measures fmnist-standard and fmnist-robust on 1,000 test images" in c.value
               and "draws no verdict" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 3 + 4  # the zoo's three; two scatters, the binned curve, the ROC
    # an L∞ margin in 255ths, the unit of the ε slider beside it (its line at 2/255)
    import json

    chart = next(c for c in at.get("plotly_chart") if c.key == "margins_scatter_fmnist-standard")
    scatter = json.loads(chart.proto.spec)
    assert scatter["layout"]["xaxis"]["title"]["text"] == "input margin (L∞, in /255)"
    assert scatter["layout"]["shapes"][0]["x0"] == 2.0
    # detection and cost: the numbers a reader compares first lead, so they show on a laptop's page
    detection = next(frame.value for frame in at.dataframe if "speed-up" in frame.value.columns)
    assert list(detection.columns[:6]) == ["model", "AUROC", "non-robust share", "robust (attack)",
                                           "robust (estimate, 50 attacked)", "speed-up"]  # N = 50: all of them

    def sample_numbers() -> list[str]:
        return [c.value for c in at.caption if c.value.startswith("input margin")]

    before = sample_numbers()
    at.number_input(key="margins_sample_fmnist-standard").set_value(7).run()  # what selecting point 7 does
    after = sample_numbers()
    assert len(after) == 2 and after[0] != before[0] and after[1] == before[1]  # only that model's panel moved

    def detection_table() -> list[dict]:
        return next(d for d in at.dataframe if "non-robust share" in d.value.columns).value.to_dict("records")

    table_before = detection_table()
    at.slider(key="margins_eps").set_value(16.0).run()
    table_after = detection_table()
    assert table_before[0]["non-robust share"] != table_after[0]["non-robust share"]
    # what it costs is measured by bench/run.py (margins_n1000), not asserted here

    at.slider(key="margins_pseudo_n").set_value(50)
    at.button(key="margins_pseudo_run").click().run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert any(label.startswith("Kendall τ: logit margin → pseudo-margin") for label in labels)
    assert "AUROC at L∞ ε = 16/255" in labels  # the radius as its slider set it

    # results live in the cache layer: session state keeps only short keys, however many runs
    assert all(isinstance(key, str) for key in at.session_state["margin_study_runs"])
    at.slider(key="margins_eps").set_value(2.0).run()  # another ε: the pseudo-margin was learned for 16/255
    assert not at.exception and not [m for m in at.metric if m.label.startswith("Kendall τ")]


def test_the_zoo_opens_without_a_click_and_a_model_opens_its_scatter():
    from sia_core.margins import ZOO_MODELS

    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/margins.py").run()
    assert not at.exception
    zoo = ZOO_MODELS["fashion-mnist"]
    takeaway = next(m.value for m in at.markdown if m.value.startswith("**Takeaway.** Across"))
    assert f"Across {len(zoo)} models" in takeaway
    # the three claims' verdicts in one line, their whys folded under it (they had pushed the chart down a screen)
    assert "The scorecard: margin-consistent: **" in takeaway and "(why, below)" in takeaway
    assert any(e.label == "Why: the scorecard on these claims" for e in at.expander)
    table = next(d for d in at.dataframe if "τ pseudo" in d.value.columns).value
    assert list(table["model"]) == list(zoo)
    assert any(c.value.startswith("The zoo was computed by `python scripts/precompute.py`") for c in at.caption)
    weakest = at.selectbox(key="margins_zoo_model").value  # the page opens on the least consistent model
    assert weakest in takeaway

    def opened() -> str:
        return next(m.value for m in at.markdown if m.value.startswith(f"**{at.selectbox(key='margins_zoo_model').value}**"))

    before = opened()
    other = next(model for model in zoo if model != weakest)
    at.selectbox(key="margins_zoo_model").set_value(other).run()  # what selecting that model's dot does
    assert not at.exception and opened() != before and opened().startswith(f"**{other}**")
    at.radio(key="margins_zoo_score").set_value("auroc").run()
    assert not at.exception and len(at.get("plotly_chart")) >= 3
