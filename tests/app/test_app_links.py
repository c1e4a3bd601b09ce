"""Share a view: the URL holds the dataset, the model and the page's settings, and opening it restores them."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from sia_app.url_state import SHARE_OPEN_KEY
from tests.conftest import PROJECT_ROOT


def _open(query: dict[str, str], page: str) -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_link_restores_the_regions_view_and_the_page_keeps_it_in_the_url():
    at = _open({"model_id": "fmnist-robust", "regions_index": "7", "regions_q": "35",
                "regions_roi_method": "gradcam"}, "pages/regions.py")
    assert at.sidebar.selectbox(key="model_id").value == "fmnist-robust"
    assert at.number_input(key="regions_index").value == 7 and at.slider(key="regions_q").value == 35
    assert at.selectbox(key="regions_roi_method").value == "gradcam" and not at.warning
    # moving a widget moves the URL, and the link to copy says the same
    at.slider(key="regions_q").set_value(12).run()
    assert at.query_params["regions_q"] == "12"
    assert not at.sidebar.code  # the link is drawn only once its expander is opened
    at.session_state[SHARE_OPEN_KEY] = True
    at.run()
    link = [c.value for c in at.sidebar.code if "regions_q=" in c.value]
    assert link and "regions_q=12" in link[-1] and "model_id=fmnist-robust" in link[-1]


def test_a_link_restores_the_sliders_of_the_semantic_attack():
    at = _open({"sia_index": "42", "sia_attr_brightness": "0.2", "sia_attr_rotation": "-10",
                "sia_perceptual_weight": "7.5"}, "pages/sia_explore.py")
    assert at.number_input(key="sia_index").value == 42
    assert at.slider(key="sia_attr_brightness").value == 0.2 and at.slider(key="sia_attr_rotation").value == -10
    assert at.slider(key="sia_perceptual_weight").value == 7.5 and not at.warning


def test_a_diagnosis_link_carries_every_setting_of_its_run_and_says_the_result_is_not_carried():
    # the seed and the attributes were left out, so the link's run could not be the sender's
    at = _open({"diag_n": "64", "diag_seed": "3", "diag_attributes_8": "brightness,rotation"},
               "pages/sia_diagnosis.py")
    assert at.slider(key="diag_n").value == 64 and at.number_input(key="diag_seed").value == 3
    assert at.multiselect(key="diag_attributes_8").value == ["brightness", "rotation"]
    assert any(i.value.startswith("No precomputed diagnosis for these settings") for i in at.info)
    assert at.query_params["diag_seed"] in ("3", ["3"])  # kept in the address for the next link
    assert at.query_params["diag_attributes_8"] in ("brightness,rotation", ["brightness,rotation"])
    at.session_state[SHARE_OPEN_KEY] = True
    at.run()
    assert any("A result computed here is not carried" in c.value for c in at.sidebar.caption)


def test_a_bad_or_foreign_link_is_ignored_not_a_crash():
    at = _open({"model_id": "../../etc/passwd", "dataset_choice": "python:evil.py:Run", "regions_index": "999999",
                "regions_q": "500", "regions_roi_method": "nonsense"}, "pages/regions.py")
    assert at.sidebar.selectbox(key="model_id").value == "fmnist-standard"
    assert at.sidebar.selectbox(key="dataset_choice").value == "fashion-mnist-subset"
    assert at.number_input(key="regions_index").value == 0 and at.slider(key="regions_q").value == 20
    # the fallback is said, once, naming the link's values (shortened) and what opened instead
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "The link's dataset is “python:evil.py:Run”" in warnings and "showing" in warnings
    assert "The link's model is “../../etc/passwd”" in warnings
    at.run()
    assert not at.sidebar.warning  # said once, not on every rerun


def test_a_later_change_of_dataset_is_not_blamed_on_the_link():
    at = _open({"model_id": "fmnist-robust"}, "pages/regions.py")
    assert at.sidebar.selectbox(key="model_id").value == "fmnist-robust" and not at.sidebar.warning
    at.sidebar.selectbox(key="dataset_choice").set_value("cifar10-subset").run()
    assert not at.exception and not at.sidebar.warning  # the user's own switch: fmnist-robust just does not fit


def test_a_link_to_an_uploaded_folder_another_session_holds_names_no_server_path():
    at = _open({"dataset_choice": "imagefolder:/tmp/sia-explorer-uploads/0123abcd"}, "pages/regions.py")
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "an uploaded image folder this session does not hold" in warnings and "/tmp/" not in warnings


def test_a_link_restores_the_diagnosis_and_margins_settings():
    at = _open({"diag_n": "32", "diag_eps": "4.5", "diag_steps": "10"}, "pages/sia_diagnosis.py")
    assert (at.slider(key="diag_n").value, at.slider(key="diag_eps").value, at.slider(key="diag_steps").value) == (
        32, 4.5, 10)
    at = _open({"margins_n": "100", "margins_norm": "l2"}, "pages/margins.py")
    assert at.slider(key="margins_n").value == 100 and at.radio(key="margins_norm").value == "l2"
    assert not at.warning


def test_a_link_restores_the_features_sources_and_settings():
    at = _open({"features_std": "fmnist-robust", "features_robust": "fmnist-standard", "features_kind": "d_det",
                "features_n": "300", "features_eps": "0.5", "features_epochs": "3", "features_eval_n": "200"},
               "pages/features.py")
    assert at.selectbox(key="features_std").value == "fmnist-robust"
    assert at.selectbox(key="features_robust").value == "fmnist-standard"
    assert at.selectbox(key="features_kind").value == "d_det"
    assert (at.slider(key="features_n").value, at.slider(key="features_eps").value) == (300, 0.5)
    assert (at.slider(key="features_epochs").value, at.slider(key="features_eval_n").value) == (3, 200)
    assert not at.warning
    at.slider(key="features_epochs").set_value(7).run()
    assert at.query_params["features_epochs"] == "7" and at.query_params["features_std"] == "fmnist-robust"
    # a model id the dataset does not offer falls back to the default source
    at = _open({"features_std": "no-such-model"}, "pages/features.py")
    assert at.selectbox(key="features_std").value == "fmnist-standard" and not at.exception


HOSTILE = {"sia_attr_blur": "nan", "sia_attr_brightness": "inf", "sia_index": "9" * 5000, "regions_q": "x" * 5000,
           "diag_n": "-3", "margins_n": "nan", "features_epochs": "1e400", "model_id": "y" * 5000}


def test_hostile_and_stale_links_fall_back_with_a_notice_on_every_page():
    for page in ("pages/home.py", "pages/sia_explore.py", "pages/sia_diagnosis.py", "pages/regions.py",
                 "pages/margins.py", "pages/features.py", "pages/sia_robustify.py", "pages/tour.py",
                 "pages/claims.py"):
        at = _open(HOSTILE, page)  # no exception
        if page not in ("pages/tour.py", "pages/sia_robustify.py"):  # the pages with the model sidebar
            assert at.sidebar.selectbox(key="model_id").value == "fmnist-standard", page
        captions = " ".join(c.value for c in at.caption)
        if page in ("pages/sia_explore.py", "pages/regions.py", "pages/sia_diagnosis.py", "pages/margins.py"):
            assert "Ignored from the link" in captions, page
        assert "x" * 100 not in captions  # the notice names the value, shortened
    at = _open(HOSTILE, "pages/sia_explore.py")
    assert at.slider(key="sia_attr_blur").value == 0.0 and at.number_input(key="sia_index").value == 0


def test_every_dataset_spec_maps_to_its_world():
    from sia_app.worlds import world_of

    worlds = ("fashion-mnist", "cifar10", "shapes")
    assert world_of("cifar10-subset", worlds) == world_of("cifar10:/data/c", worlds) == "cifar10"
    assert world_of("fashion-mnist-subset", worlds) == world_of("fashion-mnist", worlds) == "fashion-mnist"
    assert world_of("shapes", worlds) == "shapes" and world_of("mnist:/x", worlds) is None and world_of("", worlds) is None


def test_a_link_restores_a_keypoint_worlds_sliders_and_keeps_them_in_the_url():
    at = _open({"dataset_choice": "shapes-keypoints", "model_id": "shapes-keypoints-spurious-hue",
                "kp_attr_rotation": "5", "kp_attr_brightness": "0.1", "kp_index": "3"}, "pages/sia_explore.py")
    assert at.slider(key="kp_attr_rotation").value == 5 and at.slider(key="kp_attr_brightness").value == 0.1
    assert at.number_input(key="kp_index").value == 3
    at.slider(key="kp_attr_rotation").set_value(-4).run()
    assert at.query_params["kp_attr_rotation"] == "-4"
    assert "sia_perceptual_weight" not in at.query_params  # the classifier's attack weight has no place here
