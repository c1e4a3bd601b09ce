"""SIA Explorer: page config and navigation. Each page draws the shared sidebar (dataset, model, card)
with `sia_app.sidebar.render_sidebar()`, so the choice follows the user from lens to lens."""

from __future__ import annotations

import sys

import streamlit as st  # the server imported it before any session: nothing to race

st.set_page_config(page_title="SIA Explorer", page_icon="🔍", layout="wide")
navigation = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/tour.py", title="Guided tour", icon=":material/school:"),
    st.Page("pages/sia_explore.py", title="Semantic attack: explore", icon=":material/tune:"),
    st.Page("pages/sia_diagnosis.py", title="Semantic attack: diagnosis", icon=":material/bar_chart:"),
    st.Page("pages/sia_robustify.py", title="Semantic attack: robustify", icon=":material/shield:"),
    st.Page("pages/regions.py", title="RoI vs RoA", icon=":material/join_inner:"),
    st.Page("pages/margins.py", title="Margin consistency", icon=":material/scatter_plot:"),
    st.Page("pages/features.py", title="Robust vs non-robust features", icon=":material/layers:"),
    st.Page("pages/claims.py", title="Do the claims hold?", icon=":material/fact_check:"),
])
starting = None
if not getattr(sys.modules.get("sia_app.preload"), "READY", False):  # a fresh server: say why the page waits
    starting = st.empty()
    starting.info("Starting up: loading PyTorch and the engine, once per server (a few seconds).")

import sia_app.preload  # noqa: E402,F401  (waits here until the server's start-up imports are done)
from sia_app.navigation import mark_frame_ready  # noqa: E402

if starting is not None:
    starting.empty()

mark_frame_ready()
navigation.run()
