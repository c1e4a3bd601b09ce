"""The robustify page: both shipped tables on open, their charts and takeaways, the images SIA added, and a
small live run of the imbalance study."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from sia_core.data.fashion_mnist import default_fashion_mnist_root
from sia_core.paths import PRECOMPUTED_DIR
from tests.conftest import PROJECT_ROOT

PAGE = "pages/sia_robustify.py"


def _open() -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_the_page_opens_on_both_tables_and_switches_worlds():
    if not (PRECOMPUTED_DIR / "transfer-fashion-mnist.json.gz").is_file():
        pytest.fail("assets/precomputed/transfer-fashion-mnist.json.gz is missing: run scripts/precompute.py transfer")
    at = _open()
    headers = [h.value for h in at.header]
    assert headers[:2] == ["Does SIA training transfer to other attacks?",
                           "Does SIA augmentation help under-represented classes? (Fashion-MNIST)"]
    transfer = at.dataframe[0].value
    assert list(transfer["trained with"]) == ["standard", "pgd", "sia", "random-attributes"]
    assert {"clean", "FGSM", "PGD-L∞", "PGD-L2", "CW-L2", "Attributes only", "SIA"} <= set(transfer.columns)
    assert ((transfer["SIA"] >= 0) & (transfer["SIA"] <= transfer["clean"])).all()
    # every rate in percent with one decimal (Streamlit's "percent" format wrote 87.04% beside 7%)
    import json

    formats = {name: column["type_config"]["format"]
               for name, column in json.loads(at.dataframe[0].proto.columns).items() if "type_config" in column}
    assert set(formats.values()) == {"%.1f%%"} and {"clean", "SIA"} <= set(formats)
    assert transfer["clean"].between(1, 100).all()  # percent, not a rate
    chart = json.loads(next(c for c in at.get("plotly_chart") if c.key == "robustify_transfer_chart").proto.spec)
    assert chart["layout"]["yaxis"]["title"]["text"] == "accuracy" and chart["layout"]["yaxis"]["tickformat"] == ".0%"
    captions = " ".join(c.value for c in at.caption)
    # each budget beside its column's label, which names the norm (FGSM's does not, so its budget does)
    assert "**FGSM** L∞ ε = 25.5/255" in captions and "**CW-L2** ε = 1.5" in captions  # L∞ in 255ths
    assert "L∞ L∞" not in captions and captions.count("Precomputed by") == 2
    takeaways = [m.value for m in at.markdown if m.value.startswith("**Takeaway.**")]
    assert any("SIA training beats standard training on" in t for t in takeaways)
    assert any("balances best" in t for t in takeaways)
    # the imbalance verdict's evidence, SIA's knobs one at a time, is said once: in its own section, not the takeaway
    assert any(s.value.startswith("Why SIA augmentation loses here") for s in at.subheader)  # the ablation ships
    # said once, and its section's table lists the variants, so its sentence does not list them again
    assert sum("Even the best variant trails random attribute edits (" in m.value for m in at.markdown) == 1
    assert not any("SIA's knobs changed one at a time" in m.value for m in at.markdown)
    separate = next(c.value for c in at.caption if "a separate run from the study above" in c.value)
    assert "SIA " in separate and "random edits " in separate and separate.count("where the study's reads") == 2
    assert any("Does not reproduce here.** At imbalance ratio" in t for t in takeaways)
    # SIA's gap once, in the verdict with its interval, not also in the sentence before it
    assert any("balances best" in t and "points behind it" not in t for t in takeaways)
    assert len(at.get("imgs")) >= 1 or any("Images the augmentation added" in s.value for s in at.subheader)
    at.radio(key="robustify_world").set_value("shapes").run()
    assert not at.exception
    assert list(at.dataframe[0].value["model"]) == ["shapes-standard", "shapes-robust", "shapes-sia-at",
                                                    "shapes-random-attributes"]
    if (PRECOMPUTED_DIR / "transfer-cifar10.json.gz").is_file():  # the CIFAR-10 table, on 8/255 and L2 0.5
        at.radio(key="robustify_world").set_value("cifar10").run()
        assert not at.exception
        assert list(at.dataframe[0].value["model"]) == ["cifar10-standard", "cifar10-robust", "cifar10-sia-at",
                                                        "cifar10-random-attributes"]
        # the explanation names each row's own recipe (CIFAR-10's robust model: FGSM from a random start)
        assert any("*fgsm-rs* (cifar10-robust), on FGSM attacks from a random start" in m.value for m in at.markdown)
        # the imbalance study below is Fashion-MNIST's, and says so in this world
        assert any("runs on Fashion-MNIST, not on CIFAR-10" in c.value for c in at.caption)
        assert "**CW-L2** ε = 0.5" in " ".join(c.value for c in at.caption)
        assert "**PGD-L∞** ε = 8/255, 20 steps" in " ".join(c.value for c in at.caption)  # not ε = 0.03137


@pytest.mark.skipif(not default_fashion_mnist_root().is_dir(),
                    reason="the Fashion-MNIST training split (Debian package dataset-fashion-mnist) is not installed")
def test_a_live_imbalance_run_draws_its_own_table():
    at = _open()
    at.slider(key="robustify_live_n_max").set_value(100)
    at.slider(key="robustify_live_epochs").set_value(1)
    at.multiselect(key="robustify_live_methods").set_value(["plain", "reweight"])
    submit = next(b for b in at.button if b.label == "Run")
    submit.click().run()
    assert not at.exception, at.exception
    tables = at.dataframe
    live = tables[-1].value
    assert list(live["method"]) == ["Plain training", "Class re-weighting"]
    # one seed (the default): no spread written, and no ranking drawn from it
    assert any(t.value.startswith("**Takeaway.** On one seed,") and "a glimpse" in t.value for t in at.markdown)
    assert "±" not in live["balanced accuracy"].iloc[0]
    # the header's Stop is hidden (toolbarMode minimal): a Stop button beside the run
    assert any(b.label == "Stop" for b in at.button)
    # another interaction reruns the page: the finished run stays, from the cache, with its settings named
    at.radio(key="robustify_world").set_value("shapes").run()
    assert not at.exception and list(at.dataframe[-1].value["method"]) == ["Plain training", "Class re-weighting"]
    assert any(c.value.startswith("Your last finished run: Fashion-MNIST, ρ = 100, 100 images") for c in at.caption)


def test_the_page_follows_the_world_of_the_chosen_model():
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="dataset_choice").set_value("cifar10-subset").run()
    at.switch_page("pages/sia_robustify.py").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="model_id").value.startswith("cifar10")  # the sidebar stays
    assert at.radio(key="robustify_world").value == "cifar10"
    at.radio(key="robustify_world").set_value("shapes").run()  # and the radio stays free after
    assert at.radio(key="robustify_world").value == "shapes"
