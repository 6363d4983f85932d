"""httpx loads without its command line and without trio, and still answers a real request."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO

SCRIPT = """
import http.server, importlib.util, sys, threading
from tasks.adapters.http_import import load_httpx

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello")
    def log_message(self, *_):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
threading.Thread(target=server.serve_forever, daemon=True).start()
load_httpx()
import httpx
with httpx.Client() as client:
    print(client.get(f"http://127.0.0.1:{server.server_address[1]}/").text)
print(sorted(name for name in ("trio", "httpx._main", "rich") if name in sys.modules))
if importlib.util.find_spec("trio") is not None:
    import trio
    print("trio", trio.__name__)
else:
    print("trio trio")
server.shutdown()
"""


def test_httpx_loads_without_its_command_line_or_trio_and_answers() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["hello", "[]", "trio trio"]
