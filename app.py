"""SIA Explorer: page config, navigation and the shared sidebar (dataset, model, model card)."""

from __future__ import annotations

import streamlit as st

from sia_app.sidebar import render_sidebar

st.set_page_config(page_title="SIA Explorer", page_icon="🔍", layout="wide")

# Pages read the selection from session state; the sidebar is drawn once here for all of them.
st.session_state["selection"] = render_sidebar()

navigation = st.navigation([
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
])
navigation.run()
