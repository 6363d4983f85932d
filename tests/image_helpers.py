"""Tiny wheels and a wheel.json like the wheel stage writes, for image tests and the image benchmark."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import free_port

PYTHONS = ("3.11", "3.12")


@dataclass
class TinyPackage:
    """A distribution with one import package whose __init__ holds `body`."""

    name: str
    version: str
    kind: str
    body: str = ""
    requires: list[str] = field(default_factory=list)
    scripts: dict[str, str] = field(default_factory=dict)

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

    @property
    def wheel_name(self) -> str:
        return f"{self.module}-{self.version}-py3-none-any.whl"


def write_wheel(package: TinyPackage, folder: Path) -> Path:
    """A valid pure-Python wheel with fixed timestamps (same input, same bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{package.module}-{package.version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {package.name}\nVersion: {package.version}\n"
    metadata += "".join(f"Requires-Dist: {line}\n" for line in package.requires)
    files = {
        f"{package.module}/__init__.py": f'__version__ = "{package.version}"\n{package.body}\n',
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: forkflow-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if package.scripts:
        files[f"{info}/entry_points.txt"] = "[console_scripts]\n" + "".join(
            f"{name} = {target}\n" for name, target in package.scripts.items())
    record = "".join(f"{name},sha256={record_hash(text)},{len(text.encode())}\n" for name, text in files.items())
    files[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
    target = folder / package.wheel_name
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return target


def record_hash(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_wheel_set(state_dir: Path, packages: list[TinyPackage]) -> Path:
    """Wheels under <state>/dist/<name>/ and <state>/reports/wheel.json describing them."""
    entries = []
    for package in packages:
        wheel = write_wheel(package, state_dir / "dist" / package.name)
        entries.append({"name": package.name, "version": package.version, "kind": package.kind, "status": "built",
                        "files": [{"name": wheel.name, "path": str(wheel), "sha256": sha256_file(wheel)}]})
    report = state_dir / "reports" / "wheel.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"packages": entries}, indent=2) + "\n", encoding="utf-8")
    return report


def image_config_text(registry: str, repository: str, *, python: tuple[str, ...] = ("3.11", "3.12"),
                      flavors: tuple[str, ...] = ("base", "kubernetes"), extra: str = "") -> str:
    """A pipeline.toml with only [project] and [images]: its images take wheels from wheel.json."""
    return f"""[project]
name = "orbit"

[images]
registry = "{registry}"
repository = "{repository}"
python = {json.dumps(list(python))}
flavors = {json.dumps(list(flavors))}
default_python = "{python[-1]}"
packages = ["orbit"]
extra_packages = {{ kubernetes = ["orbit-aws"] }}
{extra}"""


def unused_registry() -> str:
    """An address where no registry listens."""
    return f"127.0.0.1:{free_port()}"


@dataclass(frozen=True)
class Registry:
    address: str
    username: str
    password: str

    @property
    def env(self) -> dict[str, str]:
        return {"FORKFLOW_REGISTRY_USERNAME": self.username, "FORKFLOW_REGISTRY_PASSWORD": self.password}

    def get(self, path: str, accept: str | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"http://{self.address}/v2/{path}", method=method)
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), b""

    def tags(self, repository: str) -> list[str]:
        status, _, body = self.get(f"{repository}/tags/list")
        return sorted(json.loads(body).get("tags") or []) if status == 200 else []

    def delete(self, repository: str, tag: str) -> None:
        """Delete on purpose what `tag` points at (and so every tag on that manifest)."""
        digest = self.digest(repository, tag)
        assert digest, f"{repository}:{tag} is not in the registry"
        status, _, _ = self.get(f"{repository}/manifests/{digest}", method="DELETE")
        assert status == 202, status

    def digest(self, repository: str, tag: str) -> str | None:
        accept = "application/vnd.docker.distribution.manifest.v2+json"
        status, headers, _ = self.get(f"{repository}/manifests/{tag}", accept=accept, method="HEAD")
        return headers.get("Docker-Content-Digest") if status == 200 else None


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "pipeline.toml"
    config.write_text(text, encoding="utf-8")
    return config


def flows_envs_config(folder: Path, registry: str, session: str) -> tuple[Path, Path]:
    """The demo's flows project under `folder`/flows (marked with `session`) and a config building its environments
    (Python 3.12, base) into `registry`: (the flows folder, the config file)."""
    import shutil

    from tests.helpers import REPO

    flows = folder / "flows"
    shutil.copytree(REPO / "examples" / "demo" / "upstream" / "flows", flows)
    (flows / "orbit_flows" / "session.py").write_text(f'SESSION = "{session}"\n')
    config = write_config(folder, image_config_text(registry, f"t{session}/envs", python=("3.12",), flavors=("base",))
                          + '\n[flows]\npath = "flows"\nconfig = "flows/deployments.yaml"\n')
    return flows, config
