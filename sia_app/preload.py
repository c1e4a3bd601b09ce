"""Every library a page needs, and the engine, imported once per server before any session runs a page.

Sessions run on their own threads; two first imports of the same module racing can expose a partially
initialized module (pandas under plotly). `sia_app/serve.py` imports this on its own thread while the server
starts; app.py and every page import it first, so a session that arrives early waits on this module's import
lock until everything is loaded (and on hosts that run app.py directly, such as tests, the first session imports
it). st.dataframe converts through pandas and pyarrow.

Left to first use, as they cost seconds of every start for one world: torchvision (the ImageNet world's class names,
MTCNN's face finder), scikit-image and scipy (the face photos; a few statistics).
"""

from __future__ import annotations

import kaleido  # noqa: F401  (PNG export in reports)
import numpy  # noqa: F401
import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import plotly.io  # noqa: F401  (st.plotly_chart imports it and plotly.tools on first use)
import plotly.subplots  # noqa: F401
import plotly.tools  # noqa: F401
import pyarrow  # noqa: F401
import safetensors.torch  # noqa: F401
import torch  # noqa: F401
from PIL import Image, ImageOps  # noqa: F401

import sia_app.cache  # noqa: F401  (imports most of the engine)
import sia_app.explain  # noqa: F401
import sia_app.features_scale_view  # noqa: F401
import sia_app.references  # noqa: F401
import sia_app.report_button  # noqa: F401
import sia_app.sidebar  # noqa: F401
import sia_app.verdicts  # noqa: F401
import sia_app.worlds  # noqa: F401
import sia_app.zoo_view  # noqa: F401
import sia_core.data.images  # noqa: F401
import sia_core.figures  # noqa: F401
import sia_core.keypoints.models  # noqa: F401  (the model loaders import these on first use)
import sia_core.keypoints.shapes  # noqa: F401
import sia_core.models.efficientnet_lite  # noqa: F401
import sia_core.report  # noqa: F401

from sia_core.runtime import keep_freed_memory_for_reuse  # noqa: E402

keep_freed_memory_for_reuse()  # once per server, whichever host runs app.py (serve.py, tests, other launchers)
READY = True  # the last line: sessions read it to tell a finished import from one in progress
