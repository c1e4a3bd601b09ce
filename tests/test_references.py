"""References on screen: every key a page cites exists, and the app never shows our internal file names."""

from __future__ import annotations

import re

from sia_core.references import REFERENCES
from tests.conftest import PROJECT_ROOT


def test_every_reference_is_complete_and_links_to_arxiv():
    for reference in REFERENCES.values():
        assert re.fullmatch(r"\d{4}\.\d{4,5}", reference.arxiv), reference.key
        assert reference.markdown().endswith(f"[arXiv:{reference.arxiv}](https://arxiv.org/abs/{reference.arxiv})")
        assert 2010 <= reference.year <= 2026 and reference.title and reference.venue
    assert REFERENCES["occlusion"].short().startswith("[Zeiler and Fergus 2014]")
    assert REFERENCES["sia"].short().startswith("[Luo et al. 2023]")


def test_pages_cite_known_papers_and_no_internal_files():
    for page in [*(PROJECT_ROOT / "pages").glob("*.py"), PROJECT_ROOT / "app.py", *(PROJECT_ROOT / "sia_app").glob("*.py")]:
        text = page.read_text()
        assert "PAPERS.md" not in text and "§" not in text, page.name
        for key in re.findall(r"REFERENCES\[['\"]([\w-]+)['\"]\]", text):
            assert key in REFERENCES, (page.name, key)
        for keys in re.findall(r"render_references\(\(([^)]*)\)", text):
            for key in re.findall(r"['\"]([\w-]+)['\"]", keys):
                assert key in REFERENCES, (page.name, key)
