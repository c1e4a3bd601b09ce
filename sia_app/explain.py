"""Under a figure: one sentence of takeaway computed from the data on screen, and a collapsed plain-words
explanation for a person who has never read the paper."""

from __future__ import annotations

import streamlit as st


# the help of the semantic attack's pixel-budget slider, on every page that has one
PIXEL_BUDGET_HELP = ("The tiny pixel change allowed on top of the attribute edits: each pixel may move by at most "
                     "this many 255ths of full brightness (L∞: the largest single-pixel change). At 0 the attack "
                     "edits the attributes alone, with no pixel change.")
STEPS_HELP = ("How many gradient steps the attack takes on the attributes (and pixels): more steps usually find "
              "more failures, at more time.")
# the attack's two weights, named alike wherever a page sets them (explore, diagnosis, keypoints)
SPARSITY_WEIGHT_LABEL = "Sparsity weight λ (few attributes)"
SPARSITY_WEIGHT_HELP = "Larger values make the attack use fewer attributes, so a failure is easier to trace."
PERCEPTUAL_WEIGHT_LABEL = "Perceptual weight μ (1 − SSIM)"
PERCEPTUAL_WEIGHT_HELP = ("Larger values keep the adversarial image structurally closer to the original (higher "
                          "SSIM), at some cost in success.")


def explain(takeaway: str, what: str) -> None:
    if takeaway:
        st.markdown(f"**Takeaway.** {takeaway}")
    with st.expander("What am I looking at?"):
        st.markdown(what)
