"""The release's pins as rules: the set from verify's installs, its requirement lines, its wheel's files."""

from __future__ import annotations

import base64
import hashlib

from tasks.core.release_pins import (
    applicable,
    changed_pins,
    default_name,
    install_command,
    metadata,
    pin_set,
    release_pins,
    requirement_lines,
    requires_from_metadata,
    unmet_pins,
    wheel_files,
)

INSTALLED = {
    "3.12": {"prefect": "3.8.3+acme.72.gdd51d1d", "FastAPI": "0.150.0", "pydantic": "2.11.7", "prefect-aws": "0.7.11"},
    "3.10": {"prefect": "3.8.3+acme.72.gdd51d1d", "fastapi": "0.150.0", "pydantic": "2.11.7", "exceptiongroup": "1.3.0"},
    "3.11": {"prefect": "3.8.3+acme.72.gdd51d1d", "fastapi": "0.150.0", "pydantic": "2.10.6"},
}


def test_the_set_leaves_out_the_forks_packages_and_orders_pythons_as_versions() -> None:
    pins = pin_set(INSTALLED, ["prefect", "prefect_aws", "acme-pins"])
    assert list(pins) == ["3.10", "3.11", "3.12"]
    assert pins["3.12"] == {"fastapi": "0.150.0", "pydantic": "2.11.7"}


def test_one_line_per_name_unless_the_pythons_resolved_it_differently() -> None:
    lines = requirement_lines(pin_set(INSTALLED, ["prefect", "prefect-aws"]))
    assert lines == (
        'exceptiongroup==1.3.0 ; python_version == "3.10"',
        "fastapi==0.150.0",
        'pydantic==2.11.7 ; python_version == "3.10"',
        'pydantic==2.10.6 ; python_version == "3.11"',
        'pydantic==2.11.7 ; python_version == "3.12"',
    )
    assert applicable(lines, "3.11") == {"fastapi": "0.150.0", "pydantic": "2.10.6"}
    assert applicable(lines, "3.10")["exceptiongroup"] == "1.3.0"


def test_the_version_is_the_cores_and_the_name_the_projects() -> None:
    release = release_pins(default_name("Acme"), "prefect", "3.8.3+acme.72.gdd51d1d", {"3.12": {"fastapi": "0.150.0"}})
    assert (release.name, release.version) == ("acme-pins", "3.8.3+acme.72.gdd51d1d")
    assert release.filename == "acme_pins-3.8.3+acme.72.gdd51d1d-py3-none-any.whl"


def test_the_wheel_is_metadata_only_with_a_true_record() -> None:
    release = release_pins("acme-pins", "prefect", "3.8.3", {"3.12": {"fastapi": "0.150.0"}})
    files = dict(wheel_files(release))
    assert sorted(files) == ["acme_pins-3.8.3.dist-info/METADATA", "acme_pins-3.8.3.dist-info/RECORD",
                             "acme_pins-3.8.3.dist-info/WHEEL"]
    record = files["acme_pins-3.8.3.dist-info/RECORD"].decode().splitlines()
    for line in record[:-1]:
        path, digest, size = line.split(",")
        data = files[path]
        assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert int(size) == len(data)
    assert record[-1] == "acme_pins-3.8.3.dist-info/RECORD,,"
    assert requires_from_metadata(metadata(release)) == ("fastapi==0.150.0",)
    assert wheel_files(release) == wheel_files(release_pins("acme-pins", "prefect", "3.8.3", {"3.12": {"FastAPI": "0.150.0"}}))


def test_changed_and_unmet_pins_are_named() -> None:
    assert changed_pins(["fastapi==0.150.0", "anyio==4.9.0"], ["fastapi==0.165.0", "anyio==4.9.0"]) == [
        "- fastapi==0.150.0", "+ fastapi==0.165.0"]
    lines = ["fastapi==0.150.0", 'pydantic==2.10.6 ; python_version == "3.11"']
    assert unmet_pins(lines, {"FastAPI": "0.165.0", "pydantic": "2.11.7"}, "3.12") == [
        "fastapi: pinned 0.150.0, installed 0.165.0"]
    assert unmet_pins(lines, {"fastapi": "0.150.0"}, "3.11") == ["pydantic: pinned 2.10.6, installed nothing"]


def test_the_documented_commands() -> None:
    wanted = ["acme-pins==3.8.3", "prefect==3.8.3"]
    assert install_command("pip", "https://pypi.acme.internal/", wanted) == [
        "pip", "install", "--index-url", "https://pypi.acme.internal/simple/", *wanted]
    assert install_command("uv", "https://pypi.acme.internal", wanted, "https://mirror/simple/") == [
        "uv", "pip", "install", "--index", "https://pypi.acme.internal/simple/", "--default-index",
        "https://mirror/simple/", *wanted]
