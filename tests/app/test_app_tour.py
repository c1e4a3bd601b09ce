"""The guided tour runs start to end: every step draws its widget and its prompt, and the shortcut step shows
the spurious model changing its mind on hue while the standard one does not."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT_ROOT


def test_the_tour_runs_from_start_to_end():
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/tour.py").run()
    seen = []
    for step in range(7):
        assert not at.exception, (step, at.exception)
        seen.append(at.subheader[0].value)
        assert any(i.value.startswith("**Try this:**") for i in at.info), step
        if step == 3:  # the attack step says how far its image is from the original
            assert any("SSIM to the original" in m.value for m in at.markdown)
        if step == 4:  # where it looks, where it is attacked: whole 28 x 28 maps, not one row of pixels
            maps = [json.loads(chart.proto.spec)["data"][0]["z"] for chart in at.get("plotly_chart")]

            def shape(z) -> str:  # plotly sends arrays as typed bytes with their shape, or as nested lists
                return z["shape"].replace(" ", "") if isinstance(z, dict) else f"{len(z)},{len(z[0])}"

            assert len(maps) == 2 and all(shape(z) == "28,28" for z in maps)
        if step < 6:
            at.button(key="tour_next").click().run()
    assert seen[0] == "1. Meet the model" and seen[-1] == "7. Robust and non-robust features"
    assert at.button(key="tour_next").disabled
    at.button(key="tour_back").click().run()
    assert at.subheader[0].value == "6. Margins for free" and len(at.get("plotly_chart")) == 1


def _prediction(at: AppTest) -> str:
    return next(m.value for m in at.metric if m.label == "Prediction")


def test_hue_moves_the_spurious_model_not_the_standard_one():
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/tour.py").run()
    at.session_state["tour_step"] = 1
    at.run()
    changed = {}
    for step, model_id in ((1, "shapes-spurious-hue"), (2, "shapes-standard")):
        at.session_state["tour_step"] = step
        at.run()
        before = _prediction(at)
        at.slider(key=f"tour_{model_id}_hue").set_value(2.0).run()
        changed[model_id] = _prediction(at) != before
    assert changed == {"shapes-spurious-hue": True, "shapes-standard": False}
