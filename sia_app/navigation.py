"""Deep links that survive Streamlit's legacy `pages/` mode.

With a folder named `pages/` beside app.py, the first session after the server starts that opens a
deep link (e.g. /sia_explore) runs that page directly, without app.py (Streamlit's legacy multipage
mode). Each page calls `require_app_frame` first: if app.py has not run in this session yet, the page
is remembered and app.py takes over, sets up the navigation, and switches back to it.
"""

from __future__ import annotations

import streamlit as st

FRAME_READY_KEY = "_app_frame_ready"
PENDING_PAGE_KEY = "_pending_page"
PENDING_QUERY_KEY = "_pending_query"  # a deep link's query (the view it names) survives the hand-over
CURRENT_PAGE_KEY = "_current_page"


def require_app_frame(page_path: str) -> None:
    """Hand over to app.py when this page was started without it (only ever in a session's first run)."""
    if not st.session_state.get(FRAME_READY_KEY):
        st.session_state[PENDING_PAGE_KEY] = page_path
        st.session_state[PENDING_QUERY_KEY] = st.query_params.to_dict()
        st.switch_page("app.py", query_params=st.query_params.to_dict())
    st.session_state[CURRENT_PAGE_KEY] = page_path


def mark_frame_ready() -> None:
    """Called by app.py after `st.navigation`: resume a deep link that arrived before the frame."""
    st.session_state[FRAME_READY_KEY] = True
    pending = st.session_state.pop(PENDING_PAGE_KEY, None)
    query = st.session_state.pop(PENDING_QUERY_KEY, None)
    if pending:
        st.switch_page(pending, query_params=query or None)
