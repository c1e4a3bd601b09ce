"""Start the Streamlit server with every library and the engine imported first, in the main thread.

Streamlit runs `app.py` on one thread per session; when six sessions open a fresh server at once, their first
imports would run concurrently (see `sia_app.preload`). Importing everything here, before the server accepts a
session, leaves the sessions nothing to import.

    python sia_app/serve.py [streamlit options] [-- app arguments]
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from streamlit.web import cli  # noqa: E402

import sia_app.preload  # noqa: E402,F401
from sia_app.launch import launch_config_files  # noqa: E402


def _names_torchvision(argv: list[str]) -> bool:
    """Whether the operator's models include a torchvision: spec (its import costs seconds: only then)."""
    texts = [" ".join(argv)] + [path.read_text(errors="replace") for path in launch_config_files(argv)
                                if path.is_file()]
    return any("torchvision:" in text for text in texts)


def main(argv: list[str]) -> int:
    if _names_torchvision(argv):
        import torchvision.models  # noqa: F401
    sys.argv = ["streamlit", "run", str(PROJECT_ROOT / "app.py"), *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
