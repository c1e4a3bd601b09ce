"""The RoI vs RoA page through AppTest: it renders, reacts to the method and to q, and runs the study."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT_ROOT


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_regions_page_reacts_to_method_and_q_and_runs_the_study():
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/regions.py").run()
    assert not at.exception
    # RoI, RoA, zones of one image; the shipped study (class maps, IoU histogram, curve) without a click
    assert len(at.get("plotly_chart")) == 3 + 3 + 1
    assert any("Precomputed by" in c.value for c in at.caption)
    # each choice's help names its options by the labels they are chosen by
    from sia_core.regions.neutralization import FILLS

    fill_help = at.selectbox(key="regions_fill").help
    assert all(f"**{label}**: " in fill_help for label in FILLS.labels().values())
    before = _metrics(at)
    assert set(before) == {"IoU of the regions", "Dice", "Attack energy inside the RoI", "Spearman of the two maps"}

    at.slider(key="regions_q").set_value(40).run()
    # the shipped study is at q 20%: the page says which setting to set back, rather than dropping it silently
    assert any("A precomputed study ships for this model with q 20%: set that" in i.value for i in at.info)
    after_q = _metrics(at)
    assert after_q["IoU of the regions"] != before["IoU of the regions"]
    assert after_q["Spearman of the two maps"] == before["Spearman of the two maps"]  # q does not touch the maps

    at.selectbox(key="regions_roi_method").set_value("gradcam").run()
    assert not at.exception and at.selectbox(key="regions_layer").value == "network.features.2"
    assert _metrics(at)["Spearman of the two maps"] != after_q["Spearman of the two maps"]

    at.slider(key="regions_n").set_value(32)
    at.slider(key="regions_n_fit").set_value(32)
    next(b for b in at.button if b.label == "Run the study").click().run()
    assert not at.exception
    assert any(m.value.startswith("**Takeaway.** Blanking the") for m in at.markdown)
    table = at.dataframe[0].value
    assert len(table) == 6 and "adaptive attack" in table.columns  # four masks, and two random controls
    assert len(at.get("plotly_chart")) == 3 + 3 + 1  # + class maps and IoU histogram, + the curve
    assert not any("Precomputed by" in c.value for c in at.caption)  # this run's study replaced the shipped one

    # the report lives in the cache: a rerun finds it again, and the session keeps only the run's key
    at.selectbox(key="regions_class").set_value(at.selectbox(key="regions_class").options[1]).run()
    assert not at.exception and len(at.dataframe) == 1
    runs = at.session_state["regions_study_runs"]
    assert len(runs) == 1 and isinstance(runs[0], str) and "n=32" in runs[0]
