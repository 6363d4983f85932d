"""The remembered config: a start takes the validated values of an earlier start of the same text and code, as
plain objects that behave as the models do; a changed file, another file, changed code or another pydantic
means a full validation."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from tasks.core.config import Config, parse_config_text
from tasks.core.config_plain import Plain, declared_paths
from tasks.core.errors import ConfigError
from tasks.pipeline import config_cache
from tasks.pipeline.settings import load_settings

# every kind of value a section holds: nested sections, tuples of sections, mappings of sections and of tuples,
# floats, text beyond ASCII, a property ([flows] config_patterns), a value a validator fills in (default_python)
RICH = """\
state_dir = "state"
[project]
name = "demo"
[fork]
path = "fork"
upstream = "https://example.com/up.git"
origin = "git@example.com:me/fork.git"
keep_backups = 2
[packages]
ui = [{source = "ui", target = "src/x/ui"}]
verify_python = ["3.11"]
skip = ["x-gcp"]
[versions]
allow_prerelease = true
[index]
url = "http://127.0.0.1:9/"
[flows]
path = "."
config = ["a/*.yaml", "b/prefect.yaml"]
[images]
registry = "localhost:5000/team"
python = ["3.11", "3.12"]
extra_packages = { kubernetes = ["x-aws"] }
build_args = { NOTE = "café \\u0001 \\"quoted\\"" }
[images.tags]
dev = ["sha-{sha7}"]
[environments.dev]
prefect_api_url = "http://127.0.0.1:1/api"
variables = { X = "1" }
[environments.prod]
branch = "main"
schedules = true
[timeouts]
git = 1e-7
index = 1e20
[github]
runners = { "linux/arm64" = "arm" }
"""


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "b").mkdir(exist_ok=True)
    (folder / "b" / "prefect.yaml").write_text("deployments: []\n", encoding="utf-8")
    config = folder / "pipeline.toml"
    config.write_text(text, encoding="utf-8")
    return config


def loaded_twice(config: Path) -> tuple[Config, Config]:
    """The config validated (the first start) and remembered (the next)."""
    first = load_settings(config).config
    return first, load_settings(config).config


def sections(config: Config) -> dict[str, Any]:
    return {name: getattr(config, name) for name in Config.model_fields}


def test_a_remembered_config_behaves_as_the_validated_one(tmp_path: Path) -> None:
    config = write(tmp_path, RICH)
    first, again = loaded_twice(config)
    assert not isinstance(first, Plain) and isinstance(again, Plain)
    validated = parse_config_text(RICH, str(config))
    assert repr(again) == repr(validated)
    assert again.model_dump() == validated.model_dump()
    assert again.model_dump(mode="json") == validated.model_dump(mode="json")
    for name, section in sections(validated).items():
        remembered = getattr(again, name)
        if hasattr(section, "model_dump_json"):
            assert remembered.model_dump_json() == section.model_dump_json(), name
            assert remembered.model_dump() == section.model_dump(), name
    assert again.timeouts.model_dump_json() == '{"git":1e-7,"index":1e+20,"registry":60.0,"prefect":60.0,"engine":60.0}'
    assert again.images is not None and validated.images is not None
    assert again.images.default_python == "3.12" and again.images.tags.dev == ("sha-{sha7}",)
    assert again.environments["prod"].schedules is True and again.environments["dev"].variables == {"X": "1"}
    assert again.flows is not None and again.flows.config_patterns == ("a/*.yaml", "b/prefect.yaml")
    assert declared_paths(again) == declared_paths(validated)
    copied = again.images.model_copy(update={"push": False})
    assert copied.model_dump() == validated.images.model_copy(update={"push": False}).model_dump()
    assert again.images.push is True  # the copy is a new object
    assert pickle.loads(pickle.dumps(again)) == again  # workers of `doit -n N` get it pickled
    with pytest.raises(TypeError, match="frozen"):
        again.project.name = "other"


def test_a_changed_file_is_validated_again(tmp_path: Path) -> None:
    config = write(tmp_path, RICH)
    loaded_twice(config)
    config.write_text(RICH.replace('name = "demo"', 'name = "renamed"'), encoding="utf-8")
    changed = load_settings(config).config
    assert not isinstance(changed, Plain) and changed.project.name == "renamed"
    config.write_text(RICH.replace('name = "demo"', 'name = "Not Valid"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="project.name"):
        load_settings(config)


def test_a_bad_config_is_never_remembered(tmp_path: Path) -> None:
    config = write(tmp_path, RICH.replace('path = "."', 'path = "missing"'))
    for _ in range(2):
        with pytest.raises(ConfigError, match="configured paths do not exist"):
            load_settings(config)
    assert not (tmp_path / "state").exists()


def test_the_same_text_in_another_file_is_validated_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FORKFLOW_CONFIG names the file: the same text elsewhere (sharing one state folder) is its own config."""
    from tasks.pipeline.settings import settings

    text = RICH.replace('state_dir = "state"', 'state_dir = "../state"')
    one, two = write(tmp_path / "one", text), write(tmp_path / "two", text)
    for config in (one, two, one):
        monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
        settings.cache_clear()
        try:
            current = settings()
        finally:
            settings.cache_clear()
        assert not isinstance(current.config, Plain) and current.root == config.parent


def test_changed_code_or_pydantic_is_validated_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = tmp_path / "code"
    shutil.copytree(config_cache.TASKS_FOLDER, code, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(config_cache, "TASKS_FOLDER", code)
    config = write(tmp_path / "project", RICH)
    loaded_twice(config)
    assert isinstance(load_settings(config).config, Plain)

    module = code / "core" / "config.py"
    module.write_text(module.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # an edit, or a checkout
    assert not isinstance(load_settings(config).config, Plain)
    assert isinstance(load_settings(config).config, Plain)
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # same size, touched
    assert not isinstance(load_settings(config).config, Plain)
    (code / "core" / "new_rules.py").write_text("", encoding="utf-8")  # a module added
    assert not isinstance(load_settings(config).config, Plain)
    assert isinstance(load_settings(config).config, Plain)

    monkeypatch.setattr(config_cache, "pydantic_stamp", lambda: ["another pydantic", 1, 2])
    assert not isinstance(load_settings(config).config, Plain)


def test_a_torn_or_foreign_cache_means_a_full_validation(tmp_path: Path) -> None:
    config = write(tmp_path, RICH)
    loaded_twice(config)
    cache = tmp_path / "state" / config_cache.CACHE_FILE
    assert cache.stat().st_mode & 0o777 == 0o600  # the config's values: its owner's only
    assert [path.name for path in cache.parent.iterdir()] == [config_cache.CACHE_FILE]  # no temporary file left
    kept = json.loads(cache.read_text(encoding="utf-8"))
    for damaged in ("{torn", "[]", json.dumps({**kept, "config": {"section": "Config", "fields": [1]}}),
                    json.dumps({**kept, "config": {"tuple": [{"set": [1]}]}}), json.dumps({**kept, "config": 5})):
        cache.write_text(damaged, encoding="utf-8")
        assert not isinstance(load_settings(config).config, Plain)
        assert isinstance(load_settings(config).config, Plain)  # written again


def test_a_state_folder_that_cannot_be_written_only_means_validating_again(tmp_path: Path) -> None:
    config = write(tmp_path, RICH)
    (tmp_path / "state").write_text("a file where the state folder belongs", encoding="utf-8")
    for _ in range(2):
        assert not isinstance(load_settings(config).config, Plain)
    assert (tmp_path / "state").read_text(encoding="utf-8") == "a file where the state folder belongs"


def test_the_code_stamp_covers_every_module() -> None:
    names = {entry[0] for entry in config_cache.code_stamp()}
    assert {"core/config.py", "core/config_images.py", "core/values.py", "pipeline/config_cache.py"} <= names
    assert all(name.endswith(".py") for name in names)
