"""Image plans as data: the tag scheme, wheel selection, input hashing and rebuild reasons."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tasks.core import image_tags, smoke
from tasks.core import images as core
from tasks.core.config import parse_config
from tasks.core.config_images import ImageTags
from tasks.core.errors import ConfigError, ForkflowError

RULES = image_tags.TagRules(ImageTags().always, ImageTags().release, ImageTags().release_default_python, ImageTags().dev)
SHA = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"


def tags(version: str, python: str, flavor: str, revision: str = SHA) -> list[str]:
    return list(image_tags.tags_for(RULES, version, python, flavor, "3.12", revision))


def test_release_tags_follow_prefects_scheme() -> None:
    assert tags("3.1.5", "3.12", "base") == ["3.1.5-python3.12", "3.1-python3.12", "3-python3.12", "3-latest"]
    assert tags("3.1.5", "3.12", "kubernetes") == [
        "3.1.5-python3.12-kubernetes", "3.1-python3.12-kubernetes", "3-python3.12-kubernetes", "3-latest-kubernetes"]
    assert tags("3.1.5", "3.12", "conda") == [
        "3.1.5-python3.12-conda", "3.1-python3.12-conda", "3-python3.12-conda", "3-latest-conda"]
    assert tags("3.1.5", "3.11", "base") == ["3.1.5-python3.11", "3.1-python3.11", "3-python3.11"]
    assert tags("3.1.5", "3.11", "kubernetes") == [
        "3.1.5-python3.11-kubernetes", "3.1-python3.11-kubernetes", "3-python3.11-kubernetes"]


def test_prerelease_gets_only_its_version_tag() -> None:
    assert tags("3.2.0rc1", "3.12", "base") == ["3.2.0rc1-python3.12"]
    assert tags("3.2.0rc1", "3.11", "kubernetes") == ["3.2.0rc1-python3.11-kubernetes"]
    assert tags("0.28.0b2", "3.12", "conda") == ["0.28.0b2-python3.12-conda"]


def test_dev_build_gets_a_sha_tag() -> None:
    assert tags("3.2.0.dev3", "3.12", "base") == ["3.2.0.dev3-python3.12", "sha-1a2b3c4-python3.12"]
    assert tags("3.2.0.dev3", "3.11", "kubernetes") == [
        "3.2.0.dev3-python3.11-kubernetes", "sha-1a2b3c4-python3.11-kubernetes"]
    assert tags("3.8.3+12.g1a2b3c4.dirty", "3.12", "base") == [
        "3.8.3-12.g1a2b3c4.dirty-python3.12", "sha-1a2b3c4-python3.12"]
    assert tags("3.2.0.dev3", "3.12", "base", revision="") == ["3.2.0.dev3-python3.12"]


def test_version_kinds() -> None:
    assert image_tags.version_kind("1.0.0") == "release"
    assert image_tags.version_kind("1.0.0rc1") == "prerelease"
    assert image_tags.version_kind("1.0.0a1") == "prerelease"
    assert image_tags.version_kind("1.0.0.dev1") == "dev"
    assert image_tags.version_kind("1.0.0+3.gabc") == "dev"
    assert image_tags.version_kind("not a version") == "dev"
    assert image_tags.version_kind("3.8.3+acme.12") == "release", "a fork's marked release is a release"
    assert image_tags.version_kind("3.8.3+12.gabc1234.dirty") == "dev"


def test_fork_marked_release_gets_release_tags() -> None:
    rules = image_tags.TagRules(*(getattr(ImageTags(), k) for k in ("always", "release", "release_default_python", "dev")))
    assert image_tags.tags_for(rules, "3.8.3+acme.12", "3.12", "base", "3.12", SHA) == (
        "3.8.3-acme.12-python3.12", "3.8-python3.12", "3-python3.12", "3-latest")


def test_tag_scheme_is_configurable() -> None:
    config = parse_config({"project": {"name": "orbit"}, "images": {
        "registry": "r", "tags": {"release_default_python": ["latest{flavor}"], "always": ["v{version}-py{python}{flavor}"]}}},
        "pipeline.toml")
    assert config.images is not None
    scheme = config.images.tags
    rules = image_tags.TagRules(scheme.always, scheme.release, scheme.release_default_python, scheme.dev)
    assert image_tags.tags_for(rules, "2.0.0", "3.12", "kubernetes", "3.12", SHA) == (
        "v2.0.0-py3.12-kubernetes", "2.0-python3.12-kubernetes", "2-python3.12-kubernetes", "latest-kubernetes")


def test_unknown_tag_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"project": {"name": "orbit"}, "images": {"registry": "r", "tags": {"dev": ["sha-{commit}"]}}},
                     "pipeline.toml")
    assert "images.tags.dev" in str(caught.value) and "unknown tag fields ['commit']" in str(caught.value)


def test_extra_packages_keys_are_flavors() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"project": {"name": "orbit"}, "images": {"registry": "r", "extra_packages": {"gpu": ["x"]}}},
                     "pipeline.toml")
    assert "images.extra_packages" in str(caught.value) and "'gpu'" in str(caught.value)


WHEELS = [
    core.Wheel("orbit", "1.0.1", "core", "orbit-1.0.1-py3-none-any.whl", "/d/orbit.whl", "a" * 64),
    core.Wheel("orbit-client", "1.0.1", "client", "orbit_client-1.0.1-py3-none-any.whl", "/d/c.whl", "b" * 64),
    core.Wheel("orbit-aws", "0.2.0", "integration", "orbit_aws-0.2.0-py3-none-any.whl", "/d/aws.whl", "c" * 64),
    core.Wheel("orbit-flows", "0.1.0", "flows", "orbit_flows-0.1.0-py3-none-any.whl", "/d/f.whl", "d" * 64),
]


def test_default_packages_are_the_core_and_the_flavor_names_the_rest() -> None:
    chosen = core.select_wheels(WHEELS, None, "[images] packages", "wheel.json")
    assert [w.name for w in chosen] == ["orbit"]
    assert core.flavor_packages(WHEELS, "kubernetes", {}) == ()
    assert core.flavor_packages(WHEELS, "base", {}) == ()
    assert core.flavor_packages(WHEELS, "kubernetes", {"kubernetes": ("orbit-aws",)}) == ("orbit-aws",)
    kubernetes = core.Wheel("orbit-kubernetes", "0.1.0", "integration", "orbit_kubernetes-0.1.0-py3-none-any.whl",
                            "/d/k.whl", "e" * 64)
    assert core.flavor_packages([*WHEELS, kubernetes], "kubernetes", {}) == ("orbit-kubernetes",)
    assert core.flavor_packages([*WHEELS, kubernetes], "base", {}) == ()
    assert [w.name for w in core.select_wheels(WHEELS, ["orbit_flows", "Orbit"], "x", "wheel.json")] == ["orbit-flows", "orbit"]


def test_a_kubernetes_flavor_that_adds_nothing_says_what_to_write() -> None:
    with pytest.raises(ConfigError) as caught:
        core.check_flavor_differs("kubernetes", (), (), (), "orbit")
    assert "builds no orbit-kubernetes" in str(caught.value)
    assert 'extra_packages = { kubernetes = ["prefect-kubernetes"] }' in str(caught.value)
    core.check_flavor_differs("kubernetes", (), ("kubernetes",), ("redis",), "orbit")
    core.check_flavor_differs("base", (), (), (), "orbit")


def test_default_python_is_the_newest_listed() -> None:
    from tasks.core.config_images import Images

    assert Images(registry="r", python=("3.12", "3.9", "3.10")).default_python == "3.12"
    assert Images(registry="r", python=("3.11", "3.12"), default_python="3.11").default_python == "3.11"
    assert tags("3.1.5", "3.12", "base")[-1] == "3-latest"


def test_unknown_package_names_what_is_available() -> None:
    with pytest.raises(ForkflowError) as caught:
        core.select_wheels(WHEELS, ["orbit-kubernetes"], "[images] extra_packages.kubernetes", "wheel.json")
    message = str(caught.value)
    assert "orbit-kubernetes not among the wheels in wheel.json" in message
    assert "available: orbit, orbit-aws, orbit-client, orbit-flows" in message


def test_wheel_report_must_have_packages() -> None:
    with pytest.raises(ForkflowError):
        core.wheels_from_report({"files": []}, "wheel.json")
    found = core.wheels_from_report({"packages": [{"name": "orbit", "version": "1.0.1", "kind": "core", "files": [
        {"name": "orbit-1.0.1.tar.gz", "path": "/x", "sha256": "0"},
        {"name": "orbit-1.0.1-py3-none-any.whl", "path": "/y", "sha256": "1"}]}]}, "wheel.json")
    assert [(w.file, w.path) for w in found] == [("orbit-1.0.1-py3-none-any.whl", "/y")]


PY312 = core.marker_environment("3.12", "x86_64")


def test_third_party_requirements_leave_out_the_project_and_extras() -> None:
    requires = {
        "orbit-aws": ["orbit>=1.0.0", "boto3>=1.34", 'moto; extra == "test"'],
        "orbit": ["httpx>=0.27", 'tomli; python_version < "3.11"', "boto3>=1.34"],
    }
    found = core.third_party_requirements(requires, ["orbit", "orbit-aws"], core.marker_environment("3.10", "x86_64"))
    assert found == ("boto3>=1.34", "httpx>=0.27", 'tomli; python_version < "3.11"')
    assert core.requirement_names(found) == ["boto3", "httpx", "tomli"]
    assert core.third_party_requirements(requires, ["orbit", "orbit-aws"], PY312) == ("boto3>=1.34", "httpx>=0.27")


def test_markers_are_evaluated_for_the_images_python_and_platform() -> None:
    lines = ['whenever; python_version >= "3.13"', 'exceptiongroup>=1; python_version < "3.11"',
             'uvloop; sys_platform != "win32" and platform_python_implementation == "CPython"',
             'pywin32; sys_platform == "win32"', 'appnope; sys_platform == "darwin"',
             'greenlet; platform_machine == "x86_64" or platform_machine == "aarch64"',
             'intel-only; platform_machine == "x86_64"', 'pypy-only; implementation_name == "pypy"',
             'colorama; os_name == "nt"', 'anyio[trio]; extra == "trio" or extra == "all"',
             'tomli; python_full_version < "3.11.0a7"', "pydantic>=2.6,<3"]
    def names(python: str, machine: str) -> list[str]:
        found = core.third_party_requirements({"orbit": lines}, ["orbit"], core.marker_environment(python, machine))
        return core.requirement_names(found)

    assert names("3.12", "x86_64") == ["greenlet", "intel-only", "pydantic", "uvloop"]
    assert names("3.13", "aarch64") == ["greenlet", "pydantic", "uvloop", "whenever"]
    assert names("3.10", "x86_64") == ["exceptiongroup", "greenlet", "intel-only", "pydantic", "tomli", "uvloop"]


def test_image_platforms_map_to_machines() -> None:
    assert core.machine_of("linux/amd64") == "x86_64" and core.machine_of("linux/arm64") == "aarch64"
    with pytest.raises(ForkflowError) as caught:
        core.machine_of("windows/amd64")
    assert "[images] platforms" in str(caught.value)


def test_version_command_is_the_core_packages_own() -> None:
    assert smoke.version_command("prefect", ["prefect"]) == ["prefect", "version"]
    assert smoke.version_command("orbit", ["orbit", "orbit-admin"]) == ["orbit", "version"]
    assert smoke.version_command("orbit", []) is None
    assert smoke.version_command(None, ["orbit"]) is None


def test_version_output_must_name_the_images_version() -> None:
    prefect = "Version:             3.8.3\nAPI version:         0.8.4\nPython version:      3.12.1\n"
    assert smoke.version_mismatch(prefect, "3.8.3") is None
    assert smoke.version_mismatch("Version: 1.0.1\n", "1.0.1") is None
    assert smoke.version_mismatch(prefect, "3.8.4") == "it reports version 3.8.3, the image's version is 3.8.4"
    assert "no 'Version: ...' line" in str(smoke.version_mismatch("orbit 1.0.1\n", "1.0.1"))



def run_dashboard_script(command: list[str], timeout: float) -> tuple[dict[str, object] | None, str]:
    script = smoke.dashboard_script(command, timeout)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout + 30, check=True)
    return smoke.dashboard_answer(done.stdout)


def test_the_dashboard_script_asks_a_server_on_loopback_and_stops_it(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html>ok</html>")
    server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(tmp_path), "{port}"]
    answer, log = run_dashboard_script(server, 30)
    assert answer is not None and answer["status"] == 200 and str(answer["content_type"]).startswith("text/html")
    assert '"GET / HTTP/1.1" 200' in log
    assert smoke.dashboard_problem(200, str(answer["content_type"]), log) is None

    answer, log = run_dashboard_script([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], 30)
    assert answer == {"status": 0, "content_type": "", "seconds": answer["seconds"] if answer else None}
    assert "boom" in log and "never answered" in str(smoke.dashboard_problem(0, "", log))

    answer, log = run_dashboard_script(["no-such-server-command"], 5)
    assert answer is not None and answer["status"] == 0 and "cannot start no-such-server-command" in log


def test_the_dashboard_answer_is_the_last_line() -> None:
    assert smoke.dashboard_answer('log\n' + smoke.DASHBOARD_MARK + '{"status": 404, "content_type": "", "seconds": 1}\n') == (
        {"status": 404, "content_type": "", "seconds": 1}, "log")
    assert smoke.dashboard_answer("Traceback ...\n") == (None, "Traceback ...\n")

def spec(wheels: tuple[core.Wheel, ...] = (WHEELS[0],), base: str = "python:3.12-slim") -> core.ImageSpec:
    return core.ImageSpec("3.12", "base", base, "1.0.1", wheels, (), (), ("1.0.1-python3.12",), "r/orbit",
                          {"BASE_IMAGE": base, "PYTHON_VERSION": "3.12"})


def test_input_hash_changes_with_each_input_and_reasons_say_why() -> None:
    first = core.build_inputs(spec(), "FROM x\n", "sha256:base1")
    assert core.input_hash(first) == core.input_hash(core.build_inputs(spec(), "FROM x\n", "sha256:base1"))
    assert core.rebuild_reasons(None, first) == ["never built"]
    assert core.rebuild_reasons(first, first) == []

    changed_wheel = core.Wheel("orbit", "1.0.1", "core", WHEELS[0].file, "/d/orbit.whl", "e" * 64)
    variants = {
        "Dockerfile changed": core.build_inputs(spec(), "FROM y\n", "sha256:base1"),
        "wheel changed: orbit-1.0.1-py3-none-any.whl (aaaaaaaa -> eeeeeeee)":
            core.build_inputs(spec((changed_wheel,)), "FROM x\n", "sha256:base1"),
        "base image python:3.12-slim changed (base1 -> base2)": core.build_inputs(spec(), "FROM x\n", "sha256:base2"),
        "wheel added: orbit_aws-0.2.0-py3-none-any.whl": core.build_inputs(spec((WHEELS[0], WHEELS[2])), "FROM x\n",
                                                                           "sha256:base1"),
    }
    for reason, inputs in variants.items():
        assert core.input_hash(inputs) != core.input_hash(first)
        assert any(found.startswith(reason) for found in core.rebuild_reasons(first, inputs)), reason


def test_push_reasons_name_new_tags() -> None:
    before = core.push_target(spec(), True)
    after = {**before, "tags": ["1.0.1-python3.12", "1-latest"]}
    assert core.push_reasons(before, after) == ["new tags: 1-latest"]
    assert core.push_reasons(before, before) == []


def test_top_level_modules_from_wheel_paths() -> None:
    names = ["orbit/__init__.py", "orbit/cli/__init__.py", "orbit-1.0.1.dist-info/METADATA", "six.py",
             "_speedups.cpython-312-x86_64-linux-gnu.so", "orbit-1.0.1.data/scripts/x"]
    assert smoke.top_level_modules(names) == ["_speedups", "orbit", "six"]


def test_label_instruction_is_one_step() -> None:
    text = core.label_instruction({"b": 'say "hi"', "a": "1"})
    assert text == 'LABEL "a"="1" \\\n      "b"="say \\"hi\\""\n'


def test_smoke_script_imports_every_installed_distribution(tmp_path: Path) -> None:
    """Run the smoke script in a fresh virtual environment: a project package with the expected version passes,
    a wrong version, a missing package and a third-party distribution that fails to import are each reported."""
    from tests.image_helpers import TinyPackage, write_wheel

    wheels = [write_wheel(TinyPackage("orbit", "1.0.1", "core"), tmp_path / "w"),
              write_wheel(TinyPackage("helper-lib", "2.0", "third", "import no_such_module_anywhere"), tmp_path / "w"),
              write_wheel(TinyPackage("fine-lib", "0.1", "third"), tmp_path / "w")]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(["uv", "pip", "install", "--quiet", "--offline", "--no-deps", "--python", str(python),
                    *map(str, wheels)], check=True)
    version = "{}.{}".format(*sys.version_info[:2])
    script = smoke.smoke_script(version, [("orbit", "1.0.1", ["orbit"]), ("orbit", "0.0.1", []),
                                         ("no-such-dist", "1", ["no_such_module"])])
    result = subprocess.run([str(python), "-c", script], check=False, capture_output=True, text=True)
    assert result.returncode == 1
    assert "orbit 1.0.1" in result.stdout
    assert "FAILED: orbit 1.0.1, expected 0.0.1" in result.stdout
    assert "FAILED: no-such-dist is not installed" in result.stdout
    assert ("FAILED: import helper_lib failed: ModuleNotFoundError: "
            "No module named 'no_such_module_anywhere' (distribution helper-lib)") in result.stdout
    assert "fine_lib" not in result.stdout.replace("imported", ""), "a module that imports is not reported"
    assert "imported 3 top-level modules of 3 distributions" in result.stdout
    import os

    if os.getuid() == 0:
        assert "FAILED: runs as root" in result.stdout


def test_smoke_script_imports_setuptools_before_pip(tmp_path: Path) -> None:
    """On Python < 3.12 importing pip before setuptools breaks setuptools' distutils shim (pypa/setuptools#3044);
    an image holding both (prefect-azure pins setuptools<81) must not fail its smoke test for it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(["uv", "pip", "install", "--quiet", "--python", str(python), "setuptools<81", "pip"], check=True)
    script = smoke.smoke_script("{}.{}".format(*sys.version_info[:2]), [])
    result = subprocess.run([str(python), "-c", script], check=False, capture_output=True, text=True)
    assert "imported" in result.stdout and "FAILED: import" not in result.stdout, result.stdout + result.stderr
