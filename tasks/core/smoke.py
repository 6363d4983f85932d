"""The smoke test run inside each image: every package imports, at its expected version."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any


def top_level_modules(names: Iterable[str]) -> list[str]:
    """Import names provided by a wheel, from the paths inside it."""
    found = set()
    for name in names:
        first = name.split("/", 1)[0]
        if first.endswith((".dist-info", ".data")) or not first:
            continue
        if "/" in name:
            found.add(first)
        elif first.endswith(".py"):
            found.add(first[:-3])
        elif ".cpython-" in first or first.endswith(".so"):
            found.add(first.split(".", 1)[0])
    return sorted(found)


def smoke_script(python: str, expected: Sequence[tuple[str, str, Sequence[str]]]) -> str:
    """Python code run in the image: it runs as a non-root user, on the expected Python, each project
    package is installed with its expected version, and every installed distribution's top-level modules
    (the project's and every third-party one, found from each distribution's RECORD) import; the python3-*
    packages of a Debian or Ubuntu base (apt's, in /usr/lib/python3/dist-packages) are the OS's and left out.
    Prints one line per check; exits 1 on a miss."""
    data = json.dumps({"python": python, "packages": [[d, v, list(m)] for d, v, m in expected]})
    return f"""import importlib, importlib.metadata as md, json, os, re, sys
spec = json.loads({data!r})
bad = []
found = "%d.%d" % sys.version_info[:2]
print("python", found)
if found != spec["python"]:
    bad.append("python %s, expected %s" % (found, spec["python"]))
print("uid", os.getuid())
if os.getuid() == 0:
    bad.append("runs as root")
modules = {{}}
for dist, version, names in spec["packages"]:
    try:
        got = md.version(dist)
    except md.PackageNotFoundError:
        bad.append("%s is not installed" % dist)
        continue
    print(dist, got)
    if got != version:
        bad.append("%s %s, expected %s" % (dist, got, version))
    for name in names:
        modules.setdefault(name, dist)

def top_level(dist):
    names = set()
    for path in dist.files or []:
        parts = path.parts
        first = parts[0] if parts else ""
        if first in ("", "..", "__pycache__") or first.endswith((".dist-info", ".data", ".egg-info", ".pth")):
            continue
        if len(parts) == 1:
            first = re.sub(r"(\\.[A-Za-z0-9_-]+)?\\.(py|so|pyd)$", "", first)
            if first == parts[0]:
                continue
        if first.isidentifier():
            names.add(first)
    if not dist.files:
        names.update(n for n in (dist.read_text("top_level.txt") or "").split() if n.isidentifier())
    return names

ours = {{re.sub(r"[-_.]+", "-", d).lower() for d, _, _ in spec["packages"]}}
dists, system = [], 0
for dist in md.distributions():
    # a Debian or Ubuntu base's own python3-* packages (apt's, in /usr/lib/python3/dist-packages) belong to the OS;
    # what pip installs there goes to /usr/local/lib/python3.X/dist-packages and is checked
    if str(dist.locate_file("")).startswith("/usr/lib/python3/") and re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower() not in ours:
        system += 1
        continue
    dists.append(dist)
if system:
    print("left out", system, "distributions of the base's OS (/usr/lib/python3/dist-packages)")
print("installed", json.dumps(sorted([d.metadata["Name"], d.version] for d in dists)))
for dist in dists:
    for name in top_level(dist):
        modules.setdefault(name, dist.metadata["Name"])
# setuptools first: importing pip before it breaks its distutils shim on Python < 3.12 (pypa/setuptools#3044)
for name in sorted(modules, key=lambda n: (n not in ("_distutils_hack", "setuptools"), n)):
    try:
        importlib.import_module(name)
    except BaseException as err:
        bad.append("import %s failed: %s: %s (distribution %s)" % (name, type(err).__name__, err, modules[name]))
print("imported", len(modules), "top-level modules of", len(dists), "distributions")
for line in bad:
    print("FAILED:", line)
sys.exit(1 if bad else 0)
"""


VERSION_LINE = re.compile(r"^\s*Version:\s*(\S+)\s*$", re.MULTILINE)


def version_command(core_name: str | None, console_scripts: Iterable[str]) -> list[str] | None:
    """`<core> version` (`prefect version`) when the core package has a console script named after it."""
    if core_name is None:
        return None
    from packaging.utils import canonicalize_name

    script = canonicalize_name(core_name)
    return [script, "version"] if script in {canonicalize_name(s) for s in console_scripts} else None


def version_mismatch(output: str, expected: str) -> str | None:
    """Why a version command's output does not report `expected` (`Version: X` line), or None."""
    match = VERSION_LINE.search(output)
    if match is None:
        return f"no 'Version: ...' line in its output (expected Version: {expected})"
    if match.group(1) != expected:
        return f"it reports version {match.group(1)}, the image's version is {expected}"
    return None


def server_command(version_cmd: list[str] | None) -> list[str] | None:
    """`<core> server start` on 127.0.0.1 and a free port (`{port}`), for a core whose version command is `<core> version`."""
    if not version_cmd:
        return None
    return [version_cmd[0], "server", "start", "--host", "127.0.0.1", "--port", "{port}"]


def dashboard_problem(status: int, content_type: str, log: str) -> str | None:
    """Why a server's answer to `GET /` is not its dashboard (200 HTML), or None."""
    if status == 200 and "text/html" in content_type:
        return None
    said = f"answered {status} {content_type}".rstrip() if status else "never answered"
    tail = " | ".join(line for line in log.strip().splitlines()[-5:])
    return f"GET / {said}, not the dashboard (200 HTML); the UI bundles are missing from the wheel? server log: {tail}"


DASHBOARD_MARK = "dashboard-answer: "


def dashboard_script(command: Sequence[str], timeout: float) -> str:
    """Python code run in the image: start `command` (`{port}`: a free port) with a scratch HOME and PREFECT_HOME,
    ask `http://127.0.0.1:<port>/` until it answers, the server exits or `timeout` seconds pass, stop the server's
    process group, print the end of its log and a last line `dashboard-answer: {"status", "content_type", "seconds"}`
    (status 0: it never answered). Loopback only, so it runs in a container without network."""
    data = json.dumps({"command": list(command), "timeout": timeout})
    return f"""import json, os, signal, socket, subprocess, tempfile, time, urllib.error, urllib.request
spec = json.loads({data!r})
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
home = tempfile.mkdtemp(prefix="dashboard-")
env = dict(os.environ, HOME=home, PREFECT_HOME=os.path.join(home, ".prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
argv = [part.replace("{{port}}", str(port)) for part in spec["command"]]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
log = open(os.path.join(home, "server.log"), "w+")
status, kind, started = 0, "", time.monotonic()
try:
    proc = subprocess.Popen(argv, env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
except OSError as err:
    proc = None
    print("cannot start %s: %s" % (argv[0], err), file=log, flush=True)
while proc is not None and proc.poll() is None and time.monotonic() - started < spec["timeout"]:
    try:
        with opener.open("http://127.0.0.1:%d/" % port, timeout=5) as response:
            status, kind = response.status, response.headers.get("content-type", "")
        break
    except urllib.error.HTTPError as err:
        status, kind = err.code, err.headers.get("content-type", "")
        break
    except OSError:
        time.sleep(0.3)
seconds = round(time.monotonic() - started, 1)
if proc is not None and proc.poll() is None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
log.seek(0)
print(log.read()[-2000:].rstrip())
print({DASHBOARD_MARK!r} + json.dumps({{"status": status, "content_type": kind, "seconds": seconds}}))
"""


def dashboard_answer(output: str) -> tuple[dict[str, Any] | None, str]:
    """The answer the dashboard script printed (None when it printed none) and the server log before it."""
    lines = output.rstrip().splitlines()
    if not lines or not lines[-1].startswith(DASHBOARD_MARK):
        return None, output
    try:
        answer = json.loads(lines[-1][len(DASHBOARD_MARK):])
    except ValueError:
        return None, output
    return answer, "\n".join(lines[:-1])
