"""Start-up: the server listens before the libraries finish importing, so every session must wait for them first."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

SCRIPTS = [PROJECT_ROOT / "app.py", *sorted((PROJECT_ROOT / "pages").glob("*.py"))]


LOADED_BEFORE_ANY_SESSION = {"sys", "streamlit"}  # sia_app/serve.py imports Streamlit on the main thread first


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_every_script_a_session_runs_imports_the_preload_before_anything_else(script):
    """A session thread that imported a library while the preload thread is importing it could see it half
    initialized; importing sia_app.preload first makes it wait on that module's lock instead."""
    imports = [node for node in ast.parse(script.read_text()).body if isinstance(node, (ast.Import, ast.ImportFrom))
               and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]
    names = [alias.name if isinstance(node, ast.Import) else node.module for node in imports for alias in node.names]
    first = next(name for name in names if name not in LOADED_BEFORE_ANY_SESSION)
    assert first == "sia_app.preload"


def test_the_start_up_imports_leave_out_scipy_and_scikit_learn():
    """They took two seconds of every server start for five rank statistics (now sia_core.rank_statistics)."""
    code = ("import sys, sia_app.preload; "
            "print(sorted(name for name in ('scipy', 'sklearn', 'torchvision') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
