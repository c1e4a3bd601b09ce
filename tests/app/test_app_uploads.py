"""Uploads kept by digest, so a share link reopens the same photo: names that are not SHA-256 digests are never read,
the oldest uploads drop out, and the explore page restores a kept upload from its link (and says when it is gone)."""

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
