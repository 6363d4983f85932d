"""What a doit start loads: `doit list` on the demo config imports none of the machinery only a run uses, checks
share one parse of a report, and doit's plugins are looked up with one scan."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path

import doit.plugin
import pytest

from tests.helpers import run_doit

# what `doit list` (and any start) must not pay for: imported only by the actions and checks that use them
NOT_AT_START = (
    "prefect", "httpx", "docker", "jinja2", "yaml", "rich", "urllib.request",
    "tasks.core.deployspec", "tasks.core.prefect_yaml", "tasks.core.runtime", "tasks.core.sync",
    "tasks.pipeline.deployments", "tasks.stages.deploy.apply", "tasks.stages.deploy.desired",
    "tasks.stages.deploy.promote_run", "tasks.stages.sync.plan", "tasks.stages.sync.steps",
    # the image stage's machinery, and packaging's requirement and tag parsers (tasks.core.versions may take
    # packaging.version)
    "tasks.stages.image.build", "tasks.stages.image.check", "tasks.stages.image.inputs", "tasks.stages.image.join",
    "tasks.stages.image.base", "tasks.stages.image.envs", "tasks.stages.image.deps", "tasks.adapters.docker",
    "tasks.adapters.registry", "tasks.adapters.buildkit", "packaging.requirements", "packaging.tags",
    "packaging.specifiers", "tasks.core.release_pins", "tasks.core.pins",
)


def imported_modules(stderr: str) -> set[str]:
    """Module names from Python's -X importtime lines ("import time: self | cumulative | name")."""
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


# what a start with the config remembered from an earlier start (tasks.pipeline.config_cache) must not pay for
NOT_WHEN_REMEMBERED = ("pydantic", "pydantic_core", "annotated_types", "tasks.core.config", "tasks.core.config_images",
                       "tasks.core.config_base")


# what a no-op run's up-to-date checks must not load: the machinery of the actions they decide to skip
NOT_IN_CHECKS = (
    "tasks.stages.image.build", "tasks.stages.image.split", "tasks.stages.image.join", "tasks.stages.image.evidence",
    "tasks.stages.image.dashboard", "tasks.stages.image.tags", "tasks.stages.image.smoke_test",
    "tasks.adapters.buildkit", "tasks.adapters.registry_artifacts", "tasks.adapters.rootfs", "tasks.core.sbom",
    "tasks.stages.sync.plan", "tasks.stages.sync.steps", "tasks.stages.sync.resume", "tasks.stages.sync.protected",
    "tasks.core.sync", "tasks.core.sync_tags",
    "docker", "httpx", "prefect", "yaml", "jinja2",
    "http.client", "ssl",  # the engine, the registry and local servers are asked over plain sockets
)

# the modules the image, sync and publish checks import when doit calls them
CHECK_MODULES = ("tasks.stages.image.check", "tasks.stages.image.look", "tasks.stages.image.base",
                 "tasks.stages.image.envs", "tasks.stages.image.cell", "tasks.adapters.engine_view",
                 "tasks.stages.sync.unchanged", "tasks.stages.sync.check", "tasks.adapters.index")


def heavy(modules: set[str], tops: tuple[str, ...] = NOT_AT_START) -> list[str]:
    return sorted(name for name in modules if any(name == top or name.startswith(top + ".") for top in tops))


def test_doit_list_imports_no_run_machinery(demo_config: Path) -> None:
    done = run_doit(demo_config, "list", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deploy" in done.stdout and "promote" in done.stdout
    modules = imported_modules(done.stderr)
    assert "tasks.stages.deploy.stage" in modules and "tasks.stages.sync.stage" in modules  # the reading works
    assert heavy(modules) == []


def test_doit_list_with_the_config_remembered_imports_no_pydantic(demo_config: Path) -> None:
    cold = run_doit(demo_config, "list", env={"PYTHONPROFILEIMPORTTIME": "1"})  # validates, and remembers
    assert cold.returncode == 0, cold.stderr[-3000:]
    assert "pydantic" in imported_modules(cold.stderr)  # the reading works
    warm = run_doit(demo_config, "list", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert warm.stdout == cold.stdout
    modules = imported_modules(warm.stderr)
    assert "tasks.pipeline.config_cache" in modules and "tasks.stages.image.stage" in modules
    assert heavy(modules, NOT_WHEN_REMEMBERED + NOT_AT_START) == []


def test_the_import_check_sees_a_heavy_module() -> None:
    lines = ("import time: self [us] | cumulative | imported package\n"
             "import time:       120 |        340 |   yaml.loader\n"
             "import time:       100 |        500 | tasks.stages.sync.stage\n")
    assert heavy(imported_modules(lines)) == ["yaml.loader"]
    assert heavy(imported_modules(lines), NOT_WHEN_REMEMBERED) == []


def test_the_up_to_date_checks_load_none_of_the_build_machinery() -> None:
    """Imported in a fresh process, the modules of the image, sync and publish checks load no module that only a
    build, a push or a sync's planning uses (the no-op run in tests/test_image_checks.py checks the same of a run)."""
    import subprocess
    import sys

    from tests.helpers import REPO

    code = f"import sys, {', '.join(CHECK_MODULES)}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    modules = set(done.stdout.split())
    assert set(CHECK_MODULES) <= modules  # the reading works
    assert heavy(modules, NOT_IN_CHECKS) == []


def test_the_sync_check_after_the_fetch_answers_without_the_planner(tmp_path: Path) -> None:
    """sync:main, sync:release and sync:push are up to date by a light module: calling their check, in a
    fresh process, answers (here: no plan yet, so not up to date) and loads none of the sync machinery."""
    import subprocess
    import sys

    from tests.helpers import REPO

    code = ("import sys, types; from pathlib import Path; from tasks.stages.sync.stage import nothing_moved; "
            f"print(bool(nothing_moved(types.SimpleNamespace(state_dir=Path({str(tmp_path)!r}))))); "
            "print(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answer, modules = done.stdout.splitlines()
    assert answer == "False"
    assert "tasks.stages.sync.unchanged" in modules.split()  # the reading works
    assert heavy(set(modules.split()), NOT_IN_CHECKS) == []


def test_the_light_sync_check_reads_the_plans_tags_as_the_tag_rules_do() -> None:
    """sync's after-fetch check tells "no tag work" without tasks.core.sync_tags: for plans of every shape it
    answers as TagPlan.from_dict(...).empty does (a shape that does not read is not up to date)."""
    from tasks.core.sync_tags import TagPlan
    from tasks.stages.sync.unchanged import no_tag_work

    def by_the_rules(tags: object) -> bool:
        try:
            return TagPlan.from_dict(tags).empty  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError, AttributeError):
            return False

    def light(tags: object) -> bool:
        try:
            return no_tag_work(tags)
        except (KeyError, TypeError, ValueError, AttributeError):
            return False

    tag = {"name": "1.0.0", "sha": "a" * 40}
    shapes: list[object] = [None, {}, [], "", {"push": [], "move": []}, {"push": [tag]}, {"move": [{"x": 1}]},
                            {"push": None}, {"push": ""}, {"push": "ab"}, {"push": {}}, ["x"], {"other": 1}]
    assert [light(shape) for shape in shapes] == [by_the_rules(shape) for shape in shapes]
    assert light({"push": [], "move": []}) and not light({"push": [tag]})


def test_checks_share_one_parse_of_a_report_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.pipeline.settings import load_settings, look_at_report, read_report, write_report

    config = tmp_path / "pipeline.toml"
    config.write_text('[project]\nname = "startup"\n', encoding="utf-8")
    monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
    current = load_settings(config)
    assert look_at_report("flows", current) is None
    write_report("flows", {"flows": [{"name": "a"}]}, current)
    first = look_at_report("flows", current)
    assert first == {"flows": [{"name": "a"}]}
    assert look_at_report("flows", current) is first  # parsed once
    write_report("flows", {"flows": [{"name": "b"}]}, current)  # a new file (written beside, renamed over)
    assert look_at_report("flows", current) == {"flows": [{"name": "b"}]}
    assert read_report("flows", current) == {"flows": [{"name": "b"}]}
    assert read_report("flows", current) is not read_report("flows", current)  # a copy of one's own

    file = current.reports_dir / "flows.json"
    file.write_text("{not json", encoding="utf-8")  # rewritten in place: the size changes
    assert look_at_report("flows", current) is None
    assert (current.reports_dir / "flows.json.corrupt").is_file()


def test_doit_plugins_come_from_one_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.pipeline.runmode import read_plugins_once

    def doits_own() -> object:  # doit's lookup, as before any test made it scan once
        return importlib.metadata.entry_points

    monkeypatch.setattr(doit.plugin, "entry_points_impl", doits_own)  # restored afterwards
    scans: list[int] = []
    real = importlib.metadata.entry_points

    def counted(**params: str) -> object:
        scans.append(1)
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", counted)
    read_plugins_once()
    lookup = doit.plugin.entry_points_impl()
    for category in ("COMMAND", "LOADER", "BACKEND", "REPORTER", "COMMAND"):
        found = sorted((point.name, point.value) for point in lookup(group=f"doit.{category}"))
        assert found == sorted((point.name, point.value) for point in real(group=f"doit.{category}"))
    assert scans == [1]


def test_doit_list_names_the_same_tasks_with_a_report_in_place(demo_config: Path) -> None:
    """`doit list --all` reads flows.json through the shared parse: its subtasks are still listed."""
    reports = demo_config.parent / ".forkflow" / "reports"
    reports.mkdir(parents=True)
    entry = {"key": "hello", "flow": "hello", "names": {"dev": "orbit--main--hello--dev"}}
    listing = {"environments": ["dev"], "deployments": [entry]}
    (reports / "flows.json").write_text(json.dumps(listing), encoding="utf-8")
    done = run_doit(demo_config, "list", "--all")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deploy:hello--dev" in done.stdout


def test_report_facts_outlive_the_process_and_follow_a_new_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.pipeline import report_facts as facts_module
    from tasks.pipeline import settings as settings_module
    from tasks.pipeline.settings import load_settings, write_report

    config = tmp_path / "pipeline.toml"
    config.write_text('[project]\nname = "startup"\n', encoding="utf-8")
    current = load_settings(config)
    write_report("flows", {"inputs": "abc", "flows": [{"name": "a", "status": "built"}], "status": "failed",
                           "error": "first line\nsecond", "summary_lines": ["one", 2]}, current)
    facts = facts_module.report_facts("flows", current)
    digest = hashlib.sha256((current.reports_dir / "flows.json").read_bytes()).hexdigest()
    assert facts == {"lists": ["flows", "summary_lines"], "inputs": "abc", "counts": {"built": 1}, "failed": True,
                     "error": "first line\nsecond", "summary_lines": ["one"], "sha256": digest}

    def no_parse(file: Path) -> object:
        raise AssertionError(f"{file} parsed again")

    real_digest = facts_module.content_digest

    monkeypatch.setattr(facts_module, "_known", {})  # as a new process: only the facts file is read
    monkeypatch.setattr(facts_module, "parsed_once", no_parse)
    monkeypatch.setattr(facts_module, "content_digest", no_parse)
    assert facts_module.report_facts("flows", current) == facts
    from tasks.stages.deploy.check import listing_digest

    assert listing_digest(current) == digest  # the deploy check's flows.json digest, without reading flows.json
    monkeypatch.setattr(facts_module, "parsed_once", settings_module.parsed_once)
    monkeypatch.setattr(facts_module, "content_digest", real_digest)
    write_report("flows", {"inputs": "def", "flows": []}, current)  # a new report: its facts are read again
    assert facts_module.report_facts("flows", current) == {
        "lists": ["flows"], "inputs": "def", "counts": {}, "failed": False, "error": "see the log", "summary_lines": [],
        "sha256": hashlib.sha256((current.reports_dir / "flows.json").read_bytes()).hexdigest()}
    (current.state_dir / facts_module.FACTS).write_text("{torn", encoding="utf-8")
    monkeypatch.setattr(facts_module, "_known", {})
    assert facts_module.report_facts("flows", current) == {
        "lists": ["flows"], "inputs": "def", "counts": {}, "failed": False, "error": "see the log", "summary_lines": [],
        "sha256": hashlib.sha256((current.reports_dir / "flows.json").read_bytes()).hexdigest()}
    assert (current.state_dir / f"{facts_module.FACTS}.corrupt").is_file()
    (current.reports_dir / "flows.json").write_text("[1, 2]", encoding="utf-8")
    assert facts_module.report_facts("flows", current) is None
    (current.reports_dir / "flows.json").unlink()
    assert facts_module.report_facts("flows", current) is None


def test_task_creators_start_at_the_lines_inspect_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """doit orders task creators by their first line: read from the code object, it is the line inspect reads
    from the source, for every creator dodo.py imports (decorated ones too) and for a method creator."""
    import ast
    import importlib
    import inspect

    import doit.loader

    from tasks.pipeline.runmode import CreatorLines, read_creator_lines_from_code
    from tests.helpers import REPO

    creators = [getattr(importlib.import_module(str(node.module)), alias.name)
                for node in ast.walk(ast.parse((REPO / "dodo.py").read_text(encoding="utf-8")))
                if isinstance(node, ast.ImportFrom) and str(node.module).startswith("tasks.stages")
                for alias in node.names if alias.name.startswith("task_")]
    assert len(creators) > 20

    class Creator:
        @staticmethod
        @functools.cache
        def create_doit_tasks() -> None:
            """A creator that is a method, cached."""

    for ref in [*creators, Creator.create_doit_tasks]:
        assert CreatorLines.getsourcelines(ref)[1] == inspect.getsourcelines(ref)[1], ref
    monkeypatch.setattr(doit.loader, "inspect", inspect)  # restored afterwards
    read_creator_lines_from_code()
    assert isinstance(doit.loader.inspect, CreatorLines) and doit.loader.inspect.isfunction is inspect.isfunction


def test_installed_versions_read_from_the_header_are_those_importlib_reads(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.adapters.build import installed_version

    names = sorted({str(found.metadata["Name"]) for found in importlib.metadata.distributions()})
    assert len(names) > 20
    assert {name: installed_version(name) for name in names} == {name: importlib.metadata.version(name) for name in names}
    folded = tmp_path / "folded-1.0.dist-info"  # a header without a Version line: the parser decides
    folded.mkdir()
    (folded / "METADATA").write_text("Metadata-Version: 2.1\nName: folded\nSummary: x\n\nVersion: 9\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))

    def outcome(read: Callable[[str], str]) -> object:
        try:
            return read("folded")
        except KeyError:  # what importlib.metadata does then depends on its version: the same either way
            return KeyError

    assert outcome(installed_version) == outcome(importlib.metadata.version)
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        installed_version("not-installed-anywhere")
