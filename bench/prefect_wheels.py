"""wheel stage on Prefect's real tree (core, client, 18 integrations) vs Prefect's own way.

Needs a clone of PrefectHQ/prefect with its tags: FORKFLOW_BENCH_PREFECT=/path/to/clone.

(a) full build: `doit -n 2 wheel` vs Prefect's own way, sequentially: the
    dashboard bundles as Prefect's release workflow builds them
    (`prefect dev build-ui --include-v2`: `npm ci` and `npm run build` in ui/ and
    ui-v2/, copied into src/prefect/server/), `uv build` at the root,
    `client/build_client.sh` then `uv build` in its folder, and `python -m build`
    per integration (isolated builds, as upstream CI does). Both make a core
    wheel that serves the dashboard;
(b) no change: a second `doit wheel` vs `doit list` (0 builds), median of 5 interleaved runs;
(c) one integration touched: `doit wheel` vs one `python -m build` of it.
Verification venvs are not part of these: `doit verify` is timed alone in (d).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Result, doit_json, interleaved_medians, print_results, smoke, stopwatch

REPO = Path(__file__).resolve().parent.parent
SOURCE_ENV = "FORKFLOW_BENCH_PREFECT"


def source(folder: Path) -> Path:
    """The Prefect clone to build; a smoke run without one builds the generated Prefect-shaped monorepo."""
    value = os.environ.get(SOURCE_ENV)
    if not value and smoke():
        from bench.monorepo import generate

        generate(folder / "generated")
        return folder / "generated" / "work"
    if not value or not (Path(value) / "src" / "integrations").is_dir():
        raise RuntimeError(f"set {SOURCE_ENV} to a clone of PrefectHQ/prefect with its tags")
    return Path(value).resolve()


def clone(origin: Path, target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "--shared", str(origin), str(target)], check=True)
    return target


def write_config(folder: Path, fork: Path) -> Path:
    config = folder / "pipeline.toml"
    config.write_text(f'''[project]
name = "bench"

[fork]
path = "{fork}"
upstream = "{fork}"
origin = "{fork}"
main = "main"
release = "release"

''', encoding="utf-8")
    if not (fork / "uv.lock").exists():
        return config
    with config.open("a", encoding="utf-8") as out:
        out.write('\n[packages]\nconstraints = "constraints.txt"\n')
    pins = subprocess.run(["uv", "export", "--frozen", "--no-hashes", "--no-emit-workspace", "--all-packages", "--no-dev"],
                          cwd=fork, capture_output=True, text=True, check=True).stdout
    (folder / "constraints.txt").write_text(pins, encoding="utf-8")
    return config


def integrations(fork: Path) -> list[Path]:
    return sorted(p for p in (fork / "src" / "integrations").iterdir() if (p / "pyproject.toml").exists())


def prefects_own_way(fork: Path, outdir: Path) -> None:
    """Upstream's release builds, one after the other."""
    for source, target in (("ui", "src/prefect/server/ui"), ("ui-v2", "src/prefect/server/ui-v2")):
        if (fork / source / "package.json").exists():  # the generated smoke tree has no dashboard
            build_bundle(fork / source, fork / target)
    quiet(["uv", "build", "--out-dir", str(outdir)], fork)
    client = outdir / "client-tree"
    client.mkdir(parents=True)
    quiet(["bash", "client/build_client.sh"], fork, {"TMPDIR": str(client)})
    quiet(["uv", "build", "--out-dir", str(outdir)], client)
    for folder in integrations(fork):
        build_one(folder, outdir)


def build_bundle(source: Path, target: Path) -> None:
    """What `prefect dev build-ui` does for one bundle."""
    quiet(["npm", "ci"], source)
    quiet(["npm", "run", "build"], source)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source / "dist", target)


def quiet(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, check=True)


def build_one(folder: Path, outdir: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(outdir), str(folder)], capture_output=True, check=True)


def builds(results: dict[str, str], prefix: str = "wheel:") -> int:
    return sum(1 for name, status in results.items()
               if name.startswith(prefix) and not name.endswith(":report") and status == "success")


def verify_all(config: Path) -> str:
    """`doit --continue verify`; how many packages passed (a dependency that cannot be had here fails its package)."""
    import json

    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), "-n", "2",
                    "--continue", "verify"], check=False, env=env, capture_output=True)
    results = [json.loads(p.read_text()) for p in sorted((config.parent / ".forkflow" / "verify").glob("*.json"))]
    return f"{sum(1 for r in results if r.get('ok'))} of {len(results)} packages passed"


def doit_list(config: Path) -> None:
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), "list"],
                   env=env, capture_output=True, check=True)


def redis_module(fork: Path) -> Path:
    """The redis integration's package __init__.py (prefect-redis, or orbit-redis in the generated tree)."""
    folder = next(p for p in integrations(fork) if p.name.endswith("-redis"))
    return next(folder.glob("*_redis/__init__.py"))


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as tmp:
        folder = Path(tmp)
        origin = source(folder)
        baseline_fork = clone(origin, folder / "baseline")
        with stopwatch() as baseline:
            prefects_own_way(baseline_fork, folder / "baseline-dist")
        fork = clone(origin, folder / "fork")
        for step in (["checkout", "-q", "-B", "release"], ["branch", "-f", "main", "release"]):  # release and main here
            subprocess.run(["git", *step], cwd=fork, check=True)
        config = write_config(folder, fork)
        doit_json(config, "version")
        with stopwatch() as ours:
            full = doit_json(config, "-n", "2", "wheel")
        noop, listing, second = interleaved_medians(lambda: doit_json(config, "wheel"), lambda: doit_list(config))
        touched = redis_module(folder / "fork")
        touched.write_text(touched.read_text() + "\n# touched\n")
        with stopwatch() as one:
            incremental = doit_json(config, "wheel")
        with stopwatch() as single:
            build_one(touched.parent.parent, folder / "single-dist")
        with stopwatch() as verify:
            verified = verify_all(config)
    return [
        Result("prefect wheels (a) full build, 20 packages", ours(), baseline(), "<= 0.5",
               f"{builds(full)} builds with doit -n 2 (the dashboard bundles included) vs the dashboard bundles as "
               "prefect dev build-ui builds them + uv build + build_client.sh + python -m build per integration"),
        Result("prefect wheels (b) no change", noop, listing, "under 1.2, 0 builds",
               f"{builds(second)} builds; median of 5 interleaved runs each; baseline is `doit list`"),
        Result("prefect wheels (c) one integration touched", one(), single(), "<= 1.2",
               f"{builds(incremental)} build(s); baseline is one python -m build of {touched.parent.parent.name}"),
        Result("prefect wheels (d) verification, reported apart", verify(), ours(), "reported only",
               f"doit -n 2 --continue verify on the default Python: {verified}; baseline is the full build"),
    ]


if __name__ == "__main__":
    print_results(run())
