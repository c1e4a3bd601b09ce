"""Under a figure: one sentence of takeaway computed from the data on screen, and a collapsed plain-words
explanation for a person who has never read the paper."""

from __future__ import annotations

import streamlit as st


def explain(takeaway: str, what: str) -> None:
    if takeaway:
        st.markdown(f"**Takeaway.** {takeaway}")
    with st.expander("What am I looking at?"):
        st.markdown(what)
