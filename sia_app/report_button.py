"""One download per page: the page's report as a .zip (HTML with interactive figures, PNG, CSV), built only when
the person clicks (Streamlit runs the callable then, off the script thread)."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from sia_core.report import PageReport


def report_button(make: Callable[[], PageReport], *, name: str, key: str) -> None:
    st.download_button("Download the report (HTML, PNG, CSV)", data=lambda: make().to_zip(),
                       file_name=f"sia-explorer-{name}.zip", mime="application/zip", key=key,
                       help="A self-contained HTML file with the figures (interactive), the numbers, the model card, "
                            "the parameters, the references and, for a study, the command that reproduces it (one "
                            "image's attack has its parameters instead); a PNG of each figure and a CSV of each "
                            "table.")
