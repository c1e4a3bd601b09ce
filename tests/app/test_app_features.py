"""The features page through AppTest: load a small saved set, see its grid, train on it, run the transfer study."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sia_core.data.catalog import load_dataset
from sia_core.data.fashion_mnist import default_fashion_mnist_root
from sia_core.features import ConstructionConfig, build_constructed_set
from sia_core.models.registry import load_model
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def saved_det(tmp_path_factory) -> Path:
    """A small D̂_det built from the first 200 embedded test images, saved as a features-build .npz."""
    source = load_dataset("fashion-mnist-subset").subset(slice(0, 200), name="tiny-train")
    path = tmp_path_factory.mktemp("features") / "d_det.npz"
    build_constructed_set(load_model("fmnist-standard"), source,
                          ConstructionConfig(kind="d_det", n=120, eps_l2=2.0, steps=20), out=path)
    return path


def test_features_page_loads_a_saved_set_and_trains_on_it(saved_det, tmp_path):

    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/features.py").run()
    assert not at.exception
    at.text_input(key="features_path").set_value(str(saved_det))
    at.button(key="features_load").click().run()
    assert not at.exception
    assert any("Loaded D̂_det: 120 images from fmnist-standard" in s.value for s in at.success), (
        [s.value for s in at.success], [e.value for e in at.error])
    # how the set was built in words, as the study's table says it ("target reached 75.4%", not "0.754")
    assert any(m.value.startswith("**D̂_det**") and re.search(r"; target reached \d+\.\d%", m.value)
               for m in at.markdown)

    at.slider(key="features_epochs").set_value(1)
    at.slider(key="features_eval_n").set_value(100)
    at.button(key="features_train").click().run()
    assert not at.exception
    # the world's study at scale comes first on the page; the live run's table is the one with the N column
    row = next(frame.value.to_dict("records")[0] for frame in at.dataframe if "N" in frame.value.columns
               and "test accuracy" in frame.value.columns)
    # a Fashion-MNIST run: the paper's CIFAR-10 numbers are no comparison, so no cell or bar holds them, and the
    # caption says where they are
    assert row["trained on"] == "D̂_det" and row["test accuracy"].endswith("%") and "paper" not in row["test accuracy"]
    assert row["robust accuracy, L2 ε = 0.5"].endswith("%") and "paper" not in row["robust accuracy, L2 ε = 0.5"]
    where = "The paper's test accuracies are CIFAR-10's (D̂_det: 43.7%, its Table 1)"
    assert any(where in c.value for c in at.caption)
    bars = next(chart for chart in at.get("plotly_chart") if chart.key == "features_bars")
    assert [trace["name"] for trace in json.loads(bars.proto.spec)["data"]] == ["test accuracy (ours)",
                                                                               "robust accuracy (ours)"]
    assert row["accuracy on (y + 1) mod C labels"].endswith("%")
    live = [chart for chart in at.get("plotly_chart") if not str(chart.key).startswith("features_scale")]
    assert len(live) == 2  # the live run's accuracy bars and its training curves

    at.text_input(key="features_path").set_value(str(tmp_path / "missing.npz"))
    at.button(key="features_load").click().run()
    assert not at.exception and any("not a constructed dataset" in e.value for e in at.error)
    # keys, not images, and per dataset
    assert all(ref["how"] == "file" for refs in at.session_state["feature_sets"].values() for ref in refs.values())


@pytest.mark.skipif(not default_fashion_mnist_root().is_dir(),
                    reason="the transfer study trains on the Fashion-MNIST training split (Debian dataset-fashion-mnist)")
def test_features_page_runs_the_transfer_study(saved_det):
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/features.py").run()
    at.text_input(key="features_path").set_value(str(saved_det))
    at.button(key="features_load").click().run()
    at.multiselect(key="features_transfer_architectures").set_value(["mlp", "tiny-cnn"])
    at.slider(key="features_transfer_epochs").set_value(1)
    at.button(key="features_transfer").click().run()
    assert not at.exception, at.exception
    # the live run's scatter (the world's study at scale draws its own, titled "… at scale")
    charts = [chart for chart in at.get("plotly_chart") if "Transfer from fmnist-standard\"" in chart.proto.spec]
    assert len(charts) == 1
    scatter = json.loads(charts[0].proto.spec)["data"][0]
    assert scatter["text"] == ["mlp", "tiny-cnn"] and all(0 <= v <= 1 for v in scatter["x"] + scatter["y"])


def test_the_shipped_sets_say_whose_they_are_when_other_sources_are_chosen():
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/features.py").run()
    assert not at.exception
    assert not any("These are the shipped sets" in i.value for i in at.info)  # the shipped study's own sources
    # D̂_det by default: the transfer study below needs it, and D̂_rand had led a newcomer to "build D̂_det first"
    assert at.selectbox(key="features_kind").value == "d_det"
    at.selectbox(key="features_std").set_value("fmnist-sia-at").run()
    assert not at.exception
    note = next(i.value for i in at.info if "These are the shipped sets" in i.value)
    assert "fmnist-standard" in note and "not from fmnist-robust and fmnist-sia-at" in note and "Build" in note


def test_the_study_at_scale_shows_its_rows_intervals_curve_and_verdicts(tmp_path, monkeypatch):
    """The tiny tier of scripts/features_at_scale.py, written as the Fashion-MNIST world's study file, drawn by the
    page with the scorecard beside it."""
    import importlib.util
    import shutil
    import sys

    import sia_app.cache
    from sia_core.paths import PRECOMPUTED_DIR

    spec = importlib.util.spec_from_file_location("features_at_scale_app", PROJECT_ROOT / "scripts/features_at_scale.py")
    at_scale = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = at_scale
    spec.loader.exec_module(at_scale)
    at_scale.main(["run", "--world", "shapes", "--tier", "tiny", "--work", str(tmp_path / "work")])
    shipped = tmp_path / "precomputed"
    shipped.mkdir()
    shutil.copy(PRECOMPUTED_DIR / "claims-fashion-mnist.json", shipped)
    monkeypatch.setattr(at_scale, "PRECOMPUTED", shipped)
    monkeypatch.setitem(at_scale.WORLDS, "shapes", at_scale.dataclasses.replace(
        at_scale.WORLDS["shapes"], study_file="fashion-mnist-study.json"))
    # a D̂_det row built earlier from another source: the rebuild keeps it beside the new one
    det = next(row for row in at_scale.rows("shapes", tmp_path / "work") if row["set"] == "d_det")
    earlier = {**det, "source": "an-earlier-source", "test_accuracy": 0.5, "test_accuracy_ci95": [0.4, 0.6]}
    (shipped / "fashion-mnist-study.json").write_text(json.dumps({"features": {"tier": "tiny", "rows": [earlier]}}))
    at_scale.write("shapes", "tiny", tmp_path / "work", "python scripts/features_at_scale.py run --world shapes")
    monkeypatch.setattr(sia_app.cache, "PRECOMPUTED_DIR", shipped)
    sia_app.cache.shipped_study.clear()

    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/features.py").run()
    assert not at.exception
    assert any(h.value == "The study at scale" for h in at.subheader)
    table = at.dataframe[0].value.to_dict("records")
    assert [row["trained on"] for row in table] == ["D (original images)", "D̂_det", "D̂_rand",
                                                    "D (as many images as D̂_R)", "D̂_R", "D̂_NR",
                                                    "D (as accurate as D̂_NR)",
                                                    "D̂_det, robust source", "D̂_rand, robust source"]
    assert all("[" in row["test accuracy [95% CI]"] for row in table)
    assert not any("nan" in str(value) for row in table for value in row.values())  # plain rows were built by no one
    # the scores and how each set was built are two tables, so neither runs off a laptop's page
    assert "source" not in table[0] and "how it was built" not in table[0]
    built = {row["set"]: row for row in at.dataframe[1].value.to_dict("records")}
    assert list(built) == [row["trained on"] for row in table]
    assert built["D̂_det"]["how it was built"].startswith("target reached")
    assert built["D (original images)"]["source model"] == "— (original images)"
    assert not any("nan" in str(value) for row in built.values() for value in row.values())
    # the earlier source's D̂_det beside the current one, and what the difference is
    assert any(m.value == "**The same sets from an earlier source model**" for m in at.markdown)
    compared = next(frame.value for frame in at.dataframe if "target reached" in frame.value.columns)
    assert list(compared["source model"]) == [f"{det['source']} (now)", "an-earlier-source (earlier)"]
    assert any(c.value.startswith("D̂_det: An earlier source, an-earlier-source, whose attack reached the target on")
               for c in at.caption)
    # the sets' names are defined before the first table uses them, (y + 1) mod C included
    glossary = next(e for e in at.expander if e.label == "What D, D̂_det, D̂_rand, D̂_R and D̂_NR are")
    assert "(y + 1) mod C" in glossary.markdown[0].value and "random other class" in glossary.markdown[0].value
    assert any(chart.proto.spec and "Representation error" in chart.proto.spec for chart in at.get("plotly_chart"))
    # where the construction's targeted attack reached its target, per true class, with the 95% line and a caption
    # that adds the bars up
    charts = {chart.key: json.loads(chart.proto.spec) for chart in at.get("plotly_chart")}
    success = charts["features_scale_class_success"]
    assert [bar["name"] for bar in success["data"]] == ["D̂_det", "D̂_rand"]
    # and the same for the robust-source control's sets, under its verdict
    assert [bar["name"] for bar in charts["features_scale_class_success_robust"]["data"]] == [
        "D̂_det, robust source", "D̂_rand, robust source"]
    assert any("on the robust source" in c.value and "D̂_det, robust source: " in c.value for c in at.caption)
    # the control's sets keep every attempt (the tiny tier's all do), as the paper's construction: the page says so
    assert any("these sets keep every attempt, relabelled with its target" in element.value
               for element in [*at.caption, *at.markdown])
    assert success["layout"]["shapes"][0]["y0"] == 0.95
    rows = {row["set"]: row for row in at_scale.rows("shapes", tmp_path / "work")}
    # the caption names every source model with the sets built from it
    from sia_app.features_scale_view import SET_LABELS

    caption = next(c.value for c in at.caption if "tier (ran on" in c.value)
    for source in {row["source"] for row in rows.values() if row["source"]}:
        sets = [SET_LABELS[kind].replace(", robust source", " (robust source)") for kind, row in rows.items()
                if row["source"] == source]
        assert f"{source} for {', '.join(sets[:-1])} and {sets[-1]}" in caption
    assert success["data"][0]["y"] == [entry["rate"] for entry in rows["d_det"]["targeted_success_by_class"]]
    reached = sum(entry["reached"] for entry in rows["d_det"]["targeted_success_by_class"])
    assert any(f"D̂_det: {reached:,} of {at_scale.TIERS['tiny'].relabelled_n:,} attempts" in c.value for c in at.caption)
    transfer = json.loads(next(chart for chart in at.get("plotly_chart") if "Transfer from" in chart.proto.spec)
                          .proto.spec)
    ties, *points = transfer["data"]
    assert points[0]["text"] == ["mlp", "tiny-cnn"] and ties["mode"] == "lines"
    # the tiny tier's two training seeds: their mean labelled, each seed's own hollow; the rates at every radius
    assert [trace["name"] for trace in points] == ["mean of 2 seeds", "seed 0", "seed 1"]
    assert [shape["x0"] for shape in transfer["layout"]["shapes"]] == [0.1]  # chance on the page's ten classes
    radius = charts["features_scale_transfer_radius"]
    assert [trace["name"] for trace in radius["data"]] == ["mlp", "tiny-cnn"]
    assert radius["data"][0]["x"] == [1.0, 2.0, 4.0]  # the tier's further radii around the world's 2.0
    assert any("mean of 2 training seeds" in c.value for c in at.caption)
    # the study's own architecture scores D̂_det in the scatter and in the table from two trainings: the page says so
    apart = next(c.value for c in at.caption if "These copies train apart from the table above" in c.value)
    det = rows["d_det"]
    assert f"is not the table's D̂_det score, {det['test_accuracy']:.1%}" in apart
    assert "without weight decay (the table's: 0.0005)" in apart
    takeaway = next(m.value for m in at.markdown if m.value.startswith("**Takeaway.**"))
    # the shipped Fashion-MNIST scorecard's D̂_det verdict closes the takeaway, whatever it is
    from sia_core.claims import VERDICT_WORDS

    scorecard = {claim["id"]: claim for claim in json.loads((shipped / "claims-fashion-mnist.json").read_text())["claims"]}
    assert VERDICT_WORDS[scorecard["d-det-generalizes"]["verdict"]] in takeaway
    # one bullet per set's claim, named by the set, after the takeaway's sentence
    assert f"\n- **D̂_det: {VERDICT_WORDS[scorecard['d-det-generalizes']['verdict']]}**" in takeaway
    # under the scatter: the scorecard's verdict on the trend, or why it draws none, with its sentence
    trend = scorecard["d-det-learning-follows-transfer"]
    # its verdict's sentence as the takeaway; the numbers behind it folded into the expander below
    lead, evidence = trend["why"].split("\n\n")
    assert any(m.value == f"**Takeaway.** **{VERDICT_WORDS[trend['verdict']]}** {lead}" for m in at.markdown)
    # the lead: the verdict, its test, its rule and any change of rule after the result; the numbers folded away
    assert len(lead.split()) < 130 and "Kendall τ" in lead and "transfer success of the examples" in evidence
    assert "Our rule:" in lead and "The per-seed half (2026-12-06)" in lead
    assert any(m.value.endswith(f"**The numbers behind the verdict.** {evidence}") for m in at.markdown)
    # the expander says what the axes and the test mean in plain words; the paper's numbers are named CIFAR-10's
    assert any(m.value.startswith("Each dot is one network architecture. Across:") for m in at.markdown)
    assert any("(the paper, on CIFAR-10: D̂_rand 25.2% and D̂_det 5.8% from the robust model" in m.value
               for m in at.markdown)
    sia_app.cache.shipped_study.clear()


def test_the_scatter_says_its_d_det_was_another_sources_once_the_row_was_rebuilt():
    from sia_app.features_scale_view import _apart_from_the_table

    means = [{"architecture": "resnet9-slim", "accuracy_from_det": 0.09}]
    det_row = {"set": "d_det", "source": "new-source", "n_train": 26_000, "test_accuracy": 0.412,
               "training": {"architecture": "resnet9-slim", "weight_decay": 5e-4, "epochs": 20, "augment": "none"}}
    transfer = {"source": "old-source", "n_train": 20_000}
    said = _apart_from_the_table(transfer, means, det_row)
    assert "built from old-source, which the table's D̂_det row, built from new-source, has since replaced" in said
    assert "9.0%, is not comparable with the table's D̂_det score, 41.2%" in said
