"""The Streamlit dashboard: open a study, read its draft, see where each sentence came from.

    from medvl.dashboard import run_dashboard
    run_dashboard()                       # http://127.0.0.1:8501, until Ctrl+C

``medvl dashboard`` calls :func:`run_dashboard`. The app (:mod:`medvl.dashboard.app`) is
presentation only: it calls :mod:`medvl.dashboard.studies` (samples, uploads),
:mod:`medvl.dashboard.pictures` (views and overlays) and :mod:`medvl.dashboard.review`
(scores and exports), which call the rest of medvl. Streamlit is an optional dependency
(``pip install 'medvl[dashboard]'``): nothing here imports it until the app runs.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from medvl.errors import MedVLError

APP_PATH = Path(__file__).resolve().parent / "app.py"
DEFAULT_HOST = "127.0.0.1"  # this machine only: pass host="0.0.0.0" to serve a network
DEFAULT_PORT = 8501
MAX_UPLOAD_MB = 512  # per uploaded file (a zipped CT series fits)
MODEL_VARIABLE = "MEDVL_MODEL"  # the model the app drafts with, when set (else: chosen per study)


def streamlit_command(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, max_upload_mb: int = MAX_UPLOAD_MB
) -> list[str]:
    """The ``streamlit run`` command line that serves the app (headless, no usage statistics)."""
    options = {
        "server.address": host,
        "server.port": port,
        "server.headless": "true",
        "server.maxUploadSize": max_upload_mb,
        "server.fileWatcherType": "none",
        "browser.gatherUsageStats": "false",
        "client.toolbarMode": "viewer",  # no developer menu, no "Deploy" button
    }
    flags = [item for name, value in options.items() for item in (f"--{name}", str(value))]
    return [sys.executable, "-m", "streamlit", "run", str(APP_PATH), *flags]


def run_dashboard(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_upload_mb: int = MAX_UPLOAD_MB,
    model: str | Path | None = None,
) -> int:
    """Serve the dashboard until interrupted; returns Streamlit's exit status.

    ``model`` (a model folder or an embedded model's name) is used for every study; by default
    the app picks the embedded model that fits each study (``cxr`` for radiographs, ``ct`` for
    volumes).
    """
    if importlib.util.find_spec("streamlit") is None:
        raise MedVLError("the dashboard needs Streamlit: pip install 'medvl[dashboard]'")
    environment = dict(os.environ)
    if model is not None:
        environment[MODEL_VARIABLE] = str(model)
    print(f"medvl dashboard: http://{host}:{port} (Ctrl+C stops it)", flush=True)
    try:
        return subprocess.call(streamlit_command(host, port, max_upload_mb), env=environment)
    except KeyboardInterrupt:
        return 0
