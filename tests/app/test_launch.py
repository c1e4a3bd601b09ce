"""The operator's launch config: command-line arguments after `--` and sia_explorer.toml, read without crashing."""

from __future__ import annotations

from pathlib import Path

from sia_app.launch import CONFIG_ENV, CONFIG_FILE, parse_launch, short_spec


def test_command_line_model_with_relative_paths_made_absolute(tmp_path):
    config = parse_launch(["--model", "python:nets/lenet.py:LeNet", "--weights", "lenet.pt", "--input-shape", "1,28,28",
                           "--mean", "0.1307", "--std", "0.3081", "--data", "mnist:./data"], cwd=tmp_path, environ={})
    (model,) = config.models
    assert model.spec == f"python:{tmp_path}/nets/lenet.py:LeNet"
    assert model.options.weights == tmp_path / "lenet.pt" and model.options.input_shape == (1, 28, 28)
    assert model.options.mean == (0.1307,) and model.options.std == (0.3081,)
    assert model.data == f"mnist:{tmp_path}/data" and config.datasets == (model.data,) and not config.problems


def test_config_file_lists_models_and_datasets_relative_to_itself(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / CONFIG_FILE).write_text('''
[[model]]
spec = "python:lenet.py:LeNet"
weights = "weights/lenet.safetensors"
input_shape = [1, 28, 28]
classes = ["zero", "one"]
data = "npz:digits.npz"

[[model]]
spec = "torchvision:resnet18"
random_init = true

[[data]]
spec = "imagefolder:photos"
''')
    config = parse_launch([], cwd=folder, environ={})
    first, second = config.models
    assert first.spec == f"python:{folder}/lenet.py:LeNet" and first.options.weights == folder / "weights/lenet.safetensors"
    assert first.options.class_names == ("zero", "one") and first.data == f"npz:{folder}/digits.npz"
    assert second.spec == "torchvision:resnet18" and second.options.random_init
    assert config.datasets == (f"npz:{folder}/digits.npz", f"imagefolder:{folder}/photos")
    assert config.model("torchvision:resnet18") is second and config.model("python:elsewhere.py:X") is None
    # the environment variable names a file elsewhere; the command line's --config wins over both
    assert parse_launch([], cwd=tmp_path, environ={CONFIG_ENV: str(folder / CONFIG_FILE)}).models == config.models
    other = tmp_path / "other.toml"
    other.write_text('[[model]]\nspec = "torchvision:resnet50"\n')
    chosen = parse_launch(["--config", str(other)], cwd=folder, environ={CONFIG_ENV: str(folder / CONFIG_FILE)})
    assert [model.spec for model in chosen.models] == ["torchvision:resnet50"]


def test_unreadable_input_becomes_problems_not_exceptions(tmp_path):
    (tmp_path / "bad.toml").write_text("[[model]\nspec = ")
    (tmp_path / "keys.toml").write_text('[[model]]\nspec = "torchvision:resnet18"\ncolour = "red"\n')
    assert "Could not read the config file" in parse_launch(["--config", "bad.toml"], cwd=tmp_path, environ={}).problems[0]
    assert "takes weights" in parse_launch(["--config", "keys.toml"], cwd=tmp_path, environ={}).problems[0]
    assert "expected one argument" in parse_launch(["--model"], cwd=tmp_path, environ={}).problems[0]
    assert "--input-shape" in parse_launch(["--model", "python:a.py:B", "--input-shape", "2,2"], cwd=tmp_path,
                                           environ={}).problems[0]
    assert parse_launch(["--nonsense"], cwd=tmp_path, environ={}).problems == ("Unknown arguments ignored: --nonsense",)


def test_short_spec_keeps_the_file_name_only():
    assert short_spec("python:/home/a/lenet.py:LeNet") == "python:lenet.py:LeNet"
    assert short_spec("python:pkg.models:Net") == "python:pkg.models:Net"
    assert short_spec("fmnist-standard") == "fmnist-standard"
    assert short_spec(str(Path("/x/y"))) == "/x/y"


def test_a_shared_server_can_turn_off_the_paths_its_visitors_type(tmp_path):
    assert parse_launch([], cwd=tmp_path, environ={}).server_paths  # a local copy: on, as before
    assert not parse_launch(["--no-server-paths"], cwd=tmp_path, environ={}).server_paths
    (tmp_path / CONFIG_FILE).write_text('server_paths = false\n[[data]]\nspec = "imagefolder:photos"\n')
    from_file = parse_launch([], cwd=tmp_path, environ={})
    assert not from_file.server_paths and from_file.datasets == (f"imagefolder:{tmp_path / 'photos'}",)
    (tmp_path / CONFIG_FILE).write_text('server_paths = "no"\n')
    assert any("server_paths" in problem for problem in parse_launch([], cwd=tmp_path, environ={}).problems)


def test_with_server_paths_off_no_page_asks_for_a_path(tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import PROJECT_ROOT

    config = tmp_path / "sia_explorer.toml"
    config.write_text("server_paths = false\n")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
        at.run()
        assert not at.exception, at.exception
        choices = at.sidebar.selectbox(key="dataset_choice").options
        assert "Image folder (one sub-folder per class)" not in choices and "NumPy .npz file" not in choices
        assert "CIFAR-10 test subset (embedded)" in choices and not at.sidebar.text_input
        at.switch_page("pages/features.py").run()
        assert not at.exception and not [t for t in at.text_input if t.key == "features_path"]
        assert any("reads no path its visitors type" in i.value for i in at.info)
    finally:
        st.cache_resource.clear()
