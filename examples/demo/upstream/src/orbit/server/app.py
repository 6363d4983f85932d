"""`orbit server start`: serves the dashboard packaged in orbit/server/ui/, as Prefect's server does."""

from __future__ import annotations

import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

UI = Path(__file__).parent / "ui"


def serve(host: str = "127.0.0.1", port: int = 4200) -> None:
    if not (UI / "index.html").is_file():
        print("The dashboard is not built: GET / answers 404", file=sys.stderr, flush=True)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(UI))
    with ThreadingHTTPServer((host, port), handler) as server:
        print(f"orbit server on http://{host}:{port}", flush=True)
        server.serve_forever()
