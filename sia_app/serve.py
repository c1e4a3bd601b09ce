"""Start the Streamlit server at once, and import every library and the engine beside it, on one thread.

The server listens within a second; the imports (torch alone takes about three) run meanwhile on the thread
"sia-preload", while the browser loads the page. Sessions run app.py and the pages on threads of their own, and two
threads importing the same package for the first time can see it half-initialized (pandas under plotly), so app.py
and every page import `sia_app.preload` before any other library (app.py first shows a start-up notice, with the
Streamlit imported here): a session that arrives early waits on that module's import lock until this thread has
finished, and then finds every library loaded. See `sia_app.preload`; tests/app/test_startup.py checks the order.

    python sia_app/serve.py [streamlit options] [-- app arguments]
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

# the server's own modules, here on the main thread, so the two threads never import the same ones
from streamlit.web import bootstrap, cli  # noqa: E402,F401
from streamlit.web.server import Server  # noqa: E402,F401


def _names_torchvision(argv: list[str]) -> bool:
    """Whether the operator's models include a torchvision: spec (its import costs seconds: only then)."""
    from sia_app.launch import launch_config_files

    texts = [" ".join(argv)] + [path.read_text(errors="replace") for path in launch_config_files(argv)
                                if path.is_file()]
    return any("torchvision:" in text for text in texts)


def _import_everything(argv: list[str]) -> None:
    import sia_app.preload  # noqa: F401

    if _names_torchvision(argv):
        import torchvision.models  # noqa: F401


def _skip_component_scan() -> None:
    """Streamlit 1.67 reads the metadata of every installed distribution at start (about 0.6 s, holding the
    interpreter) to find third-party v2 components; this app uses none, so the scan only delays the first page."""
    from streamlit.components.v2.component_manager import BidiComponentManager

    BidiComponentManager.discover_and_register_components = lambda self, *args, **kwargs: None


def main(argv: list[str]) -> int:
    threading.Thread(target=_import_everything, args=(list(argv),), name="sia-preload", daemon=True).start()
    _skip_component_scan()
    sys.argv = ["streamlit", "run", str(PROJECT_ROOT / "app.py"), *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
