"""pipeline.toml: every kind of bad file stops before any task runs, with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tasks.core.config import parse_config_text
from tasks.core.errors import ConfigError
from tasks.pipeline.settings import load_settings
from tests.helpers import REPO, run_doit

MINIMAL = '[project]\nname = "demo"\n'


def write(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "pipeline.toml"
    config.write_text(text, encoding="utf-8")
    return config


def test_embedded_config_is_valid() -> None:
    loaded = load_settings(REPO / "pipeline.toml")
    assert loaded.config.project.name == "orbit"
    assert loaded.state_dir == REPO / ".forkflow"
    assert set(loaded.config.environments) == {"dev", "prod"}


def test_defaults_mirror_prefect_layout(tmp_path: Path) -> None:
    loaded = load_settings(write(tmp_path, MINIMAL))
    assert loaded.config.state_dir == ".forkflow"
    assert loaded.config.packages.core == "."
    assert loaded.config.packages.client == "client"
    assert loaded.config.packages.integrations == "src/integrations/*"
    assert loaded.config.fork is None


def test_config_is_frozen(tmp_path: Path) -> None:
    loaded = load_settings(write(tmp_path, MINIMAL))
    with pytest.raises(ValidationError):
        loaded.config.project.name = "other"


def test_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "deployments.yaml").write_text("flows: {}\n")
    loaded = load_settings(write(tmp_path, MINIMAL + '[flows]\npath = "flows"\nconfig = "flows/deployments.yaml"\n'))
    assert loaded.config.flows is not None and loaded.path(loaded.config.flows.path) == tmp_path / "flows"
    assert loaded.state_dir == tmp_path / ".forkflow"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[project\nname = "x"\n', ["not valid TOML", "line 1"]),
        (MINIMAL + '[fork]\npath = "f"\nupstream = "u"\norigin = "o"\nupstreem = "x"\n',
         ["fork.upstreem", "unknown key", "'x'", "allowed keys here: path, upstream, origin"]),
        (MINIMAL + "[images]\nregistry = 5\n", ["images.registry = 5", "string"]),
        (MINIMAL + '[images]\nregistry = "r"\npython = ["3.12", "python3"]\n', ["images.python", "3.12", "python3"]),
        (MINIMAL + '[images]\nregistry = "r"\nflavors = ["alpine"]\n', ["images.flavors.0 = 'alpine'", "base", "conda", "kubernetes"]),
        ('[fork]\npath = "f"\nupstream = "u"\norigin = "o"\n', ["project: required key is missing"]),
        (MINIMAL + '[fork]\npath = "f"\norigin = "o"\n', ["fork.upstream: required key is missing"]),
        (MINIMAL + '[index]\nurl = "ftp://x"\n', ["index.url = 'ftp://x'", "must start with http:// or https://"]),
        (MINIMAL + '[environments.dev]\nprefect_api_url = "http://x/api"\nwork_pool = "p"\nbranchh = "main"\n',
         ["environments.dev.branchh", "allowed keys here: prefect_api_url, work_pool, branch, schedules"]),
        ('[project]\nname = "Bad Name"\n', ["project.name = 'Bad Name'"]),
    ],
)
def test_bad_config_message_names_key_value_and_rule(tmp_path: Path, text: str, expected: list[str]) -> None:
    config = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert str(config) in message
    for part in expected:
        assert part in message


def test_missing_paths_are_reported_together(tmp_path: Path) -> None:
    config = write(tmp_path, MINIMAL + '[fork]\npath = "fork"\nupstream = "nowhere/up.git"\norigin = "https://example.com/o.git"\n'
                   '[flows]\npath = "flows"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "fork.upstream = 'nowhere/up.git': no such file or folder" in message
    assert "flows.path = 'flows'" in message
    assert "fork.path" not in message, "the fork clone is made by sync, so it may be missing"
    assert "fork.origin" not in message, "URLs are not checked on disk"


def test_demo_paths_may_be_missing_before_the_demo_runs(tmp_path: Path) -> None:
    text = (REPO / "pipeline.toml").read_text().replace('source = "examples/demo"', f'source = "{REPO}/examples/demo"')
    loaded = load_settings(write(tmp_path, text))
    assert loaded.demo_workspace == tmp_path / ".forkflow" / "demo"


def test_errors_list_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text('state_dir = 3\n[project]\nname = "ok"\n[index]\nurl = "x"\nuser = "y"\n', "p.toml")
    message = str(caught.value)
    assert "state_dir = 3" in message and "index.url = 'x'" in message and "index.user" in message


@pytest.mark.parametrize(
    "text",
    ['[project\n', MINIMAL + "[fork]\nunknown = 1\n", MINIMAL + "[images]\nregistry = 1\n", "[index]\nurl='http://x'\n",
     MINIMAL + '[flows]\npath = "missing-folder"\n'],
    ids=["syntax", "unknown-key", "wrong-type", "missing-required", "missing-path"],
)
def test_doit_exits_2_before_any_task_runs(tmp_path: Path, text: str) -> None:
    config = write(tmp_path, text)
    result = run_doit(config, "demo")
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(config) in result.stderr
    assert not (tmp_path / ".forkflow").exists(), "nothing may be created for a bad config"
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_explained(tmp_path: Path) -> None:
    result = run_doit(tmp_path / "nope.toml", "list")
    assert result.returncode == 2
    assert "config file not found" in result.stderr and "FORKFLOW_CONFIG" in result.stderr


def test_default_run_covers_only_configured_stages(tmp_path: Path) -> None:
    from tasks.core.stages import PIPELINE, configured_stages

    assert configured_stages(load_settings(REPO / "pipeline.toml").config) == list(PIPELINE)
    fork_only = MINIMAL + '[fork]\npath = "fork"\nupstream = "https://example.com/u.git"\norigin = "https://example.com/o.git"\n'
    assert configured_stages(load_settings(write(tmp_path, fork_only)).config) == ["sync", "version", "wheel", "verify"]
    assert configured_stages(load_settings(write(tmp_path, MINIMAL)).config) == []


REG = '[images]\nregistry = "127.0.0.1:5001"\n'
FORK = '[fork]\npath = "f"\nupstream = "https://example.com/u.git"\norigin = "https://example.com/o.git"\n'
REFUSED = [
    ("url-space", '[environments.dev]\nprefect_api_url = "http://127.0.0 .1"\n', "a URL cannot contain spaces"),
    ("url-no-host", '[environments.dev]\nprefect_api_url = "http://"\n', "has no valid host"),
    ("url-port", '[environments.dev]\nprefect_api_url = "http://127.0.0.1:70000/api"\n', "port must be a number in 1-65535"),
    ("index-url", '[index]\nurl = "http://"\n', "index.url = 'http://': has no valid host"),
    ("junk-registry", '[images]\nregistry = "http://not a registry"\n', "a registry looks like host[:port][/namespace]"),
    ("registry-port", '[images]\nregistry = "127.0.0.1:99999"\n', "a registry looks like"),
    ("python-empty", REG + "python = []\n", "images.python = []: needs at least one Python version"),
    ("python-twice", REG + 'python = ["3.12", "3.12"]\n', "lists 3.12 more than once"),
    ("flavors-empty", REG + "flavors = []\n", "images.flavors = []: needs at least one flavor"),
    ("default-python", REG + 'default_python = "3.11"\n', "default_python '3.11' is not in python = ['3.12']"),
    ("work-pool-empty", '[environments.dev]\nwork_pool = ""\n', "environments.dev.work_pool = ''"),
    ("branch-ref", '[environments.dev]\nbranch = "ma..in"\n', "not a valid git branch name"),
    ("fork-branch-ref", FORK + 'release = "rel ease"\n', "fork.release = 'rel ease': not a valid git branch name"),
    ("port-range", "[services.index]\nport = 70000\n", "services.index.port = 70000"),
    ("port-shared", "[services.index]\nport = 4201\n", "services.index.port and services.prefect.port are both 4201"),
    ("main-is-release", FORK + 'release = "main"\n', "main and release are both 'main'"),
    ("branch-twice", '[environments.dev]\nbranch = "main"\n[environments.prod]\nbranch = "main"\n',
     "environments dev and prod both have branch = 'main'"),
    ("schedules-yes", '[environments.dev]\nschedules = "yes"\n', "environments.dev.schedules = 'yes'"),
    ("port-string", '[services.index]\nport = "8081"\n', "services.index.port = '8081'"),
    ("file-url-missing", '[fork]\npath = "f"\nupstream = "file:///nonexistent/u.git"\norigin = "https://example.com/o.git"\n',
     "fork.upstream = 'file:///nonexistent/u.git': no such file or folder (/nonexistent/u.git)"),
    ("push-backups-yes", FORK + 'push_backups = "yes"\n', "fork.push_backups = 'yes'"),
]


@pytest.mark.parametrize(("text", "fragment"), [(text, fragment) for _, text, fragment in REFUSED],
                         ids=[name for name, _, _ in REFUSED])
def test_bad_values_are_refused_with_exit_2_and_nothing_changes(tmp_path: Path, text: str, fragment: str) -> None:
    config = write(tmp_path, MINIMAL + text)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    result = run_doit(config, "list")
    assert result.returncode == 2, result.stdout + result.stderr
    assert fragment in result.stderr and str(config) in result.stderr
    assert "Traceback" not in result.stderr
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert not (tmp_path / ".forkflow").exists()


def test_an_empty_state_dir_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path, 'state_dir = ""\n' + MINIMAL)
    result = run_doit(config, "list")
    assert result.returncode == 2 and "state_dir = '': must name a folder of its own" in result.stderr
    assert not (tmp_path / "doit.db").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.toml"]


def test_a_glob_beside_an_exact_branch_stays_valid(tmp_path: Path) -> None:
    loaded = load_settings(write(tmp_path, MINIMAL + '[environments.dev]\nbranch = "*"\n[environments.prod]\nbranch = "main"\n'))
    assert loaded.config.environments["dev"].branch == "*"


def test_images_provenance_is_one_of_its_modes() -> None:
    base = MINIMAL + '[images]\nregistry = "127.0.0.1:5001"\n'
    assert parse_config_text(base, "p.toml").images.provenance == "auto"  # type: ignore[union-attr]
    assert parse_config_text(base + 'provenance = "off"\n', "p.toml").images.provenance == "off"  # type: ignore[union-attr]
    assert parse_config_text(base + 'provenance = "max"\n', "p.toml").images.provenance == "max"  # type: ignore[union-attr]
    with pytest.raises(ConfigError) as caught:
        parse_config_text(base + 'provenance = "yes"\n', "p.toml")
    assert "images.provenance" in str(caught.value) and "'min'" in str(caught.value)


def test_github_runners_name_image_platforms() -> None:
    found = parse_config_text(MINIMAL + '[github]\nrunners = { "linux/arm64" = "ubuntu-24.04-arm" }\n', "p.toml")
    assert found.github is not None and found.github.runners == {"linux/arm64": "ubuntu-24.04-arm"}
    with pytest.raises(ConfigError) as caught:
        parse_config_text(MINIMAL + '[github]\nrunners = { "arm64" = "ubuntu-24.04-arm" }\n', "p.toml")
    assert "github.runners" in str(caught.value) and "linux/arm64" in str(caught.value)
