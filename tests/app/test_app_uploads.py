"""Uploads: photos kept by digest, so a share link reopens the same photo (names that are not SHA-256 digests are
never read, the oldest drop out, and the explore page restores a kept upload from its link, or says it is gone);
zipped image folders checked under their own name and offered to the models they fit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT_ROOT


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SIA_EXPLORER_HOME", str(tmp_path))
    return tmp_path


def test_kept_uploads_come_back_by_digest_and_nothing_else_is_read(home, monkeypatch):
    from sia_app import uploads

    data = _png(0)
    digest = uploads.keep_upload(data)
    assert len(digest) == 64 and uploads.kept_upload(digest) == data
    (home / "secret").write_bytes(b"x")
    for name in ("../secret", "secret", digest.upper(), digest[:-1], "", "a" * 65):
        assert uploads.kept_upload(name) is None
    monkeypatch.setattr(uploads, "KEEP", 2)
    later = [uploads.keep_upload(_png(seed)) for seed in (1, 2)]
    assert uploads.kept_upload(digest) is None and all(uploads.kept_upload(d) for d in later)  # the oldest went
    # another session may prune a file between the listing and its stat: it sorts last, and nothing raises
    assert uploads.modified_time(home / "uploads" / digest) == float("inf")
    assert not list((home / "uploads").glob("*.partial*"))  # the scratch files were all renamed into place


def test_a_link_naming_a_kept_upload_reopens_it_on_the_explore_page(home):
    from sia_app import uploads

    digest = uploads.keep_upload(_png(3))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/sia_explore.py")
    at.query_params.update({"sia_image_source": "Upload", "sia_upload_id": digest})
    at.run()
    assert not at.exception
    assert any("kept on this server" in c.value for c in at.caption)
    assert any("No label for an upload" in c.value for c in at.caption)
    gone = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    gone.run()
    gone.switch_page("pages/sia_explore.py")
    gone.query_params.update({"sia_image_source": "Upload", "sia_upload_id": "0" * 64})
    gone.run()
    assert not gone.exception and any("no longer kept" in w.value for w in gone.warning)


def _folder_zip(classes: int, side: int, top: str = "") -> bytes:
    """A zipped image folder of `classes` class folders of two `side`-pixel RGB images, wrapped in `top`/ if given."""
    import io
    import zipfile

    from PIL import Image

    def png(value: int) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (side, side), (value, 255 - value, 9)).save(buffer, format="PNG")
        return buffer.getvalue()

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for k in range(classes):
            for i in range(2):
                archive.writestr(f"{top}class{k}/{i}.png", png(20 * k + i))
    return buffer.getvalue()


def _upload_folder(name: str, data: bytes) -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.switch_page("pages/regions.py")
    at.run()
    at.sidebar.file_uploader(key="dataset_zip").upload(name, data, "application/zip").run()
    assert not at.exception, at.exception
    return at


def test_an_image_folder_of_another_size_zipped_inside_its_folder_opens_on_a_model_resized_to_fit(home):
    at = _upload_folder("my_photos.zip", _folder_zip(10, 64, top="my_photos/"))
    assert not at.sidebar.error, [e.value for e in at.sidebar.error]
    assert at.session_state["dataset_choice"].startswith("imagefolder:")
    # 64 px colour photos: the 32 px colour models come first, the images resized to their input
    assert at.sidebar.selectbox(key="model_id").value.startswith("cifar10-")


def test_a_refused_folder_names_the_archive_not_a_server_path_and_stays_unselected(home):
    at = _upload_folder("one_class.zip", _folder_zip(1, 32))
    errors = " ".join(e.value for e in at.sidebar.error)
    assert errors.startswith("one_class.zip:") and "at least two class folders" in errors and "/tmp" not in errors
    assert not str(at.session_state["dataset_choice"]).startswith("imagefolder:")


def test_a_folder_whose_class_count_no_model_has_says_what_to_do_and_stays_unselected(home):
    at = _upload_folder("cats_dogs.zip", _folder_zip(2, 32))
    errors = " ".join(e.value for e in at.sidebar.error)
    assert errors.startswith("cats_dogs.zip: it has 2 class folders") and "10" in errors and "Nothing else" in errors
    # selected, it would have blanked the page and hidden what the user had computed
    assert not str(at.session_state["dataset_choice"]).startswith("imagefolder:")


def test_an_uploaded_folder_is_named_by_its_archive_in_the_dataset_box(home):
    at = _upload_folder("my_photos.zip", _folder_zip(10, 32))
    assert "Uploaded: my_photos.zip" in at.sidebar.selectbox(key="dataset_choice").options
    at.switch_page("pages/home.py").run()
    assert not at.exception, at.exception
    caption = next(c.value for c in at.caption if "Accuracy of this model" in c.value)
    assert caption.startswith("20 images of 10 classes from your upload my_photos.zip") and "/tmp" not in caption


def test_a_folder_named_after_the_models_classes_is_matched_by_name_and_one_that_is_not_says_so(home):
    at = _upload_folder("my_photos.zip", _folder_zip(10, 32))  # class0 … class9: not CIFAR-10's names
    assert any("read by position" in w.value for w in at.sidebar.warning)
    import io
    import zipfile

    buffer = io.BytesIO()
    names = ("truck", "airplane", "Ship", "automobile", "bird", "cat", "deer", "dog", "frog", "horse")
    with zipfile.ZipFile(buffer, "w") as archive, zipfile.ZipFile(io.BytesIO(_folder_zip(10, 32))) as plain:
        for member in plain.namelist():
            k, rest = member.removeprefix("class").split("/", 1)
            archive.writestr(f"{names[int(k)]}/{rest}", plain.read(member))
    named = _upload_folder("named.zip", buffer.getvalue())
    assert not any("read by position" in w.value for w in named.sidebar.warning)


def test_unpacked_folders_are_pruned_to_the_newest_and_never_the_one_just_unpacked(tmp_path, monkeypatch):
    import os

    from sia_app import cache

    monkeypatch.setattr(cache, "UPLOADS_ROOT", tmp_path)
    folders = []
    for index in range(5):
        folder = tmp_path / f"{index:064x}"
        (folder / "photos").mkdir(parents=True)
        os.utime(folder, (1000 + index, 1000 + index))
        folders.append(folder)
    (tmp_path / "not-a-digest").mkdir()
    cache.prune_uploaded_folders(keep=folders[0], limit=3)
    # the two newest others and the one just unpacked stay; nothing outside the digest names is touched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [folders[0].name, folders[3].name, folders[4].name, "not-a-digest"])
