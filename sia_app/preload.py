"""Every library a page needs, and the engine, imported once per server before any session runs a page.

Sessions run on their own threads; two first imports of the same module racing can expose a partially
initialized module (pandas under plotly). `sia_app/serve.py` imports this before Streamlit starts; `app.py`
imports it too, for hosts that run app.py directly (tests). scipy.stats alone takes over a second, and
st.dataframe converts through pandas and pyarrow.
"""

from __future__ import annotations

import kaleido  # noqa: F401  (PNG export in reports)
import numpy  # noqa: F401
import pandas  # noqa: F401
import plotly.express  # noqa: F401
import plotly.graph_objects  # noqa: F401
import plotly.subplots  # noqa: F401
import pyarrow  # noqa: F401
import safetensors.torch  # noqa: F401
import scipy.stats  # noqa: F401
import sklearn.metrics  # noqa: F401
import torch  # noqa: F401
from PIL import Image, ImageOps  # noqa: F401

import sia_app.cache  # noqa: F401  (imports the whole engine)
import sia_app.references  # noqa: F401
import sia_app.sidebar  # noqa: F401
