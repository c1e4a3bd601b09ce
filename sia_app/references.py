"""The references block each page ends with: the papers it uses, from `sia_core.references`."""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from sia_core.references import REFERENCES


def render_references(keys: Sequence[str], *, expanded: bool = False) -> None:
    with st.expander("References", expanded=expanded):
        st.markdown("\n".join(f"- {REFERENCES[key].markdown()}" for key in keys))
