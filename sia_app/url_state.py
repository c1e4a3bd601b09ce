"""The view in the URL: chosen widget values mirrored into the query string, so a copied link opens the same view.

A page names its fields with a parser each; `seed_from_url` copies the link's values into the widgets once per
session and page (before they are drawn), `publish` writes the current values back after they are drawn. A bad
value in a link is ignored (the widget keeps its default) and named in a short notice: a value that does not parse,
falls outside its range, is not a finite number, or is longer than any real value (`MAX_VALUE_LENGTH`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlencode

import streamlit as st

from sia_app import cache
from sia_app.navigation import CURRENT_PAGE_KEY

Parser = Callable[[str], Any]
SEEDED_KEY = "_url_seeded_pages"
PAGE_KEYS = "_url_page_keys"  # the current page's fields, published with the sidebar's
SHARE_OPEN_KEY = "share_link_open"  # the "Copy link to this view" expander's state
SIDEBAR_FIELDS = ("dataset_choice", "model_id")
LINK_CHOICES_KEY = "_url_link_choices"  # the sidebar's values as a link gave them, until checked against the choices
# the sidebar's uploaded weights ({"card", "name", "data"}): kept in the session, never in a link
UPLOADED_WEIGHTS_KEY = "_custom_weights"
MAX_VALUE_LENGTH = 200  # no widget value is longer; a longer one is a broken or hostile link, never parsed


def finite(text: str) -> float:
    """A float that is a real number (a link's "nan" or "inf" is refused)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _bounded(cast: Callable[[str], Any], low: float, high: float) -> Parser:
    def parse(text: str) -> Any:
        value = cast(text)
        if not low <= value <= high:
            raise ValueError(f"{value} outside {low}..{high}")
        return value
    return parse


def sha256_hex(text: str) -> str:
    """A SHA-256 digest in hex (an uploaded image's name on the server), else ValueError."""
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not a SHA-256 digest: {text[:24]!r}")
    return text


def integer(low: int, high: int) -> Parser:
    return _bounded(int, low, high)


def number(low: float, high: float) -> Parser:
    return _bounded(finite, low, high)


def choice(options: Sequence[str]) -> Parser:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"{text!r} is not one of the choices")
        return text
    return parse


def choices(options: Sequence[str]) -> Parser:
    """Several of `options`, comma-separated in the link (a multiselect's value)."""
    def parse(text: str) -> list[str]:
        chosen = [item for item in text.split(",") if item]
        unknown = [item for item in chosen if item not in options]
        if unknown or not chosen:
            raise ValueError(f"{unknown!r} are not among the choices")
        return chosen
    return parse


def seed_from_url(fields: Mapping[str, Parser], *, scope: str = "") -> None:
    """Copy the link's values of `fields` into session state, once per session and page (or `scope`). A page calls
    it before the sidebar, which then keeps these fields in the URL."""
    if not scope:
        st.session_state.setdefault(PAGE_KEYS, {})[str(st.session_state.get(CURRENT_PAGE_KEY))] = list(fields)
    seeded: set = st.session_state.setdefault(SEEDED_KEY, set())
    marker = scope or str(st.session_state.get(CURRENT_PAGE_KEY))
    if marker in seeded:
        return
    seeded.add(marker)
    ignored = []
    for key, parse in fields.items():
        if key in st.query_params:
            text = st.query_params[key]
            try:
                if len(text) > MAX_VALUE_LENGTH:
                    raise ValueError("too long")
                st.session_state[key] = parse(text)
                if scope:  # the sidebar checks these against what this server offers (`unavailable_from_link`)
                    st.session_state.setdefault(LINK_CHOICES_KEY, {})[key] = st.session_state[key]
            except (ValueError, TypeError, OverflowError):
                ignored.append(f"{key}={text[:24]}{'…' if len(text) > 24 else ''}")
                del st.query_params[key]  # a hand-edited or stale link: the widget keeps its default
    if ignored:
        st.caption("Ignored from the link (not a usable value): " + ", ".join(ignored) + ".")


def unavailable_from_link(key: str, value: Any) -> bool:
    """True when `value` (a choice this server does not offer) is the one a link gave `key`, before the sidebar
    `forget_link_choices`: it then says it fell back, rather than silently opening something else."""
    linked = st.session_state.get(LINK_CHOICES_KEY, {})
    return key in linked and linked[key] == value


def forget_link_choices() -> None:
    """The sidebar has checked the link's values: a later change of dataset is the user's, not the link's."""
    st.session_state.pop(LINK_CHOICES_KEY, None)


def publish(keys: Sequence[str]) -> None:
    """Write the current values of `keys` into the URL (rounded floats keep links short)."""
    for key in keys:
        value = st.session_state.get(key)
        if value is None:
            continue
        text = (f"{value:.6g}" if isinstance(value, float) else ",".join(map(str, value))
                if isinstance(value, (list, tuple)) else str(value))
        if st.query_params.get(key) != text:
            st.query_params[key] = text


def share_link() -> str:
    """This view's address: the page's URL with the current query."""
    base = (st.context.url or "").split("?")[0]
    query = urlencode(st.query_params.to_dict())
    return f"{base}?{query}" if query else base


def publish_view() -> None:
    """The sidebar's and the page's fields into the URL, and the link to copy. Widget values are already current
    when the sidebar runs (Streamlit updates them before the run), so the link matches what the page will show."""
    page_keys = st.session_state.get(PAGE_KEYS, {}).get(str(st.session_state.get(CURRENT_PAGE_KEY)), [])
    publish([*SIDEBAR_FIELDS, *page_keys])
    # drawn only while open: st.code's script (a syntax highlighter) is the largest a page would load otherwise,
    # over a second of a slow browser's time on every first visit
    with st.sidebar.expander("Copy link to this view", key=SHARE_OPEN_KEY, on_change="rerun") as share:
        if share.open:
            st.caption("Opens this page with the same dataset and model, and the settings this page keeps in the "
                       "address, named in the link below; other settings open at their defaults. A result computed "
                       "here is not carried: the page opens on the shipped result for these settings where one "
                       "ships, else asks to run it again (the same seed gives the same numbers). The copy button is "
                       "at the right of the box.")
            st.code(share_link(), language=None, wrap_lines=True)
            if cache.uploaded_archive_name(str(st.session_state.get("dataset_choice", ""))) is not None:
                st.warning("Your uploaded image folder stays in this session: whoever opens the link gets the "
                           "default dataset instead, and is told so.")
            weights = st.session_state.get(UPLOADED_WEIGHTS_KEY)
            if weights and weights.get("card") == st.session_state.get("model_id"):  # the model in view
                # the file stays in this session: a link cannot carry it, so whoever opens it gets the shipped model
                st.warning(f"Your weights ({weights['name']}) stay in this session: the link opens the shipped "
                           f"weights of {weights['card']}, so its results will differ. Share the file with the link.")
