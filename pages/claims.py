"""The claims scorecard: each claim of the four papers, measured on the shipped results against its control, with a
95% interval and a verdict; a link to the lens page that shows it."""

from __future__ import annotations

import sia_app.preload  # noqa: F401  (first: a session that opens a fresh server waits here for its imports)
import streamlit as st

from sia_app import cache
from sia_app.explain import explain
from sia_app.navigation import require_app_frame
from sia_app.references import render_references
from sia_app.sidebar import require_selection
from sia_app.worlds import world_of
from sia_core.claims import VERDICTS, readable_numbers
from sia_core.references import REFERENCES

WORLDS = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
VERDICT_LABELS = {"reproduces": "✅ reproduces", "partly": "🟡 partly", "does-not-reproduce": "❌ does not reproduce",
                  "not-measured": "⚪ not measured"}
PAGE_TITLES = {"sia_diagnosis": "Semantic attack: diagnosis", "sia_robustify": "Semantic attack: robustify",
               "regions": "RoI vs RoA", "margins": "Margin consistency", "features": "Robust vs non-robust features"}

require_app_frame("pages/claims.py")
st.title("Do the papers' claims hold here?")
st.caption("Each claim of the four papers, and two tests of our own that they suggest, measured on this app's "
           "shipped models and data against the control it must beat, with a 95% confidence interval. The verdict "
           "comes from a rule given with each claim's why: a gain whose interval reaches zero does not reproduce. "
           "Numbers marked \"paper\" are the paper's own, shown only on the dataset the paper measured them on.")
selection = require_selection()

available = [world for world in WORLDS if cache.shipped_scorecard(world) is not None]
if not available:
    st.info("No scorecard ships in this copy: `python scripts/precompute.py claims` writes it.")
    st.stop()
own_world = world_of(selection.card.dataset, WORLDS) or "fashion-mnist"
if st.session_state.get("claims_world") not in available:
    st.session_state["claims_world"] = own_world if own_world in available else available[0]
world = st.radio("World", available, format_func=WORLDS.get, horizontal=True, key="claims_world")
card = cache.shipped_scorecard(world)

counts = {verdict: sum(claim.verdict == verdict for claim in card.claims) for verdict in VERDICTS}
for column, verdict in zip(st.columns(len(VERDICTS)), VERDICTS):
    column.metric(VERDICT_LABELS[verdict], counts[verdict])
explain(f"Of {len(card.claims)} claims on {WORLDS[world]}, {counts['reproduces']} reproduce here, "
        f"{counts['partly']} partly, {counts['does-not-reproduce']} do not, and {counts['not-measured']} "
        f"{'is' if counts['not-measured'] == 1 else 'are'} not measured here (the table says why).",
        "Numbers read as in the whys: shares in percent, gains in percentage points (pts), scores (IoU, Kendall τ, "
        "AUROC) as decimals. **ours** is the number measured here; **95% CI** its interval over the test images "
        "(a bootstrap, or a binomial redraw where only rates ship), or over training seeds where the why says so: "
        "it leaves out "
        "training-seed variance unless the why says otherwise; **control** the number it must beat; **paper** the "
        "paper's own number where the paper reports one for this metric on this world's dataset, and **paper "
        "setting** where it comes from (the paper's models are larger, its datasets full).")

# each verdict beside its numbers, the wide text columns after them: on a laptop's page the first columns show.
# Numbers read as in the whys (shares in percent, gains in points, scores as decimals), so they are text
NUMBER_HELP = {
    "ours": "The claim's metric as measured here (see the metric column): for a gain over the control, the "
            "difference itself in percentage points (pts), not a level.",
    "95% CI": "The 95% interval of ours, on its scale.",
    "control value": "The control's own level on the metric's scale (for a gain: what the control scores, which "
                     "ours is measured against).",
    "paper value": "The paper's own number for this metric, on this world's dataset only (see paper setting).",
}
st.dataframe([{
    "verdict": VERDICT_LABELS[claim.verdict], "claim": claim.claim, **readable_numbers(claim), "metric": claim.metric,
    "control": claim.control, "paper setting": claim.paper_setting,
    "paper": REFERENCES[claim.paper].citation() if claim.paper_states_it else
    f"our test, after {REFERENCES[claim.paper].citation()}",
} for claim in card.claims], hide_index=True, width="stretch", placeholder="—",
    height="content",  # every claim in view: 16 rows had scrolled inside the table
    column_config={"claim": st.column_config.TextColumn(width="large"),
                   "paper setting": st.column_config.TextColumn(width="large"),
                   **{column: st.column_config.TextColumn(help=text) for column, text in NUMBER_HELP.items()}})

st.subheader("Why, claim by claim")
for claim in card.claims:
    with st.expander(f"{VERDICT_LABELS[claim.verdict]} — {claim.claim}"):
        st.markdown(claim.why)
        source = (f"Claim of {REFERENCES[claim.paper].short()}." if claim.paper_states_it else
                  f"Our test, which {REFERENCES[claim.paper].short()} suggests but does not state.")
        st.caption(f"{source} Shown on the page “{PAGE_TITLES.get(claim.page, claim.page)}”.")
        st.page_link(f"pages/{claim.page}.py", label=f"Open {PAGE_TITLES.get(claim.page, claim.page)}")
st.caption(f"Computed by `{card.command}` on {card.created} from the shipped results.")
render_references(tuple(dict.fromkeys(claim.paper for claim in card.claims)))
