"""Rules of verification and of wheel contents: pure functions."""

from __future__ import annotations

from tasks.core.packages import missing_modules
from tasks.core.smoke import version_mismatch
from tasks.core.verify import changed_versions, fork_closure, fork_requirements, supports_python


def test_fork_requirements_leave_out_third_party_and_extras() -> None:
    lines = ["prefect>=3.7.0", "boto3>=1.24", "prefect-kubernetes; extra == 'k8s'", "Prefect_Shell"]
    assert fork_requirements(lines, ["prefect", "prefect-shell", "prefect-kubernetes"]) == ["prefect", "prefect-shell"]


def test_fork_closure_follows_fork_packages_only() -> None:
    requires = {"prefect-dbt": ["prefect>=3", "prefect-shell>=0.3", "dbt-core"], "prefect-shell": ["prefect>=3"],
                "prefect": ["pydantic>=2"]}
    assert fork_closure("prefect_dbt", requires) == ["prefect-dbt", "prefect", "prefect-shell"]
    assert fork_closure("prefect", requires) == ["prefect"]


def test_supports_python_reads_requires_python() -> None:
    assert supports_python(">=3.10,<3.15", "3.13")
    assert not supports_python(">=3.10", "3.9")
    assert not supports_python("<3.13", "3.13")
    assert supports_python(None, "3.9") and supports_python("not a specifier", "3.12")


def test_version_check_is_a_whole_word() -> None:
    assert version_mismatch("Version:             3.8.3\nAPI version: 0.8.4", "3.8.3") is None
    assert version_mismatch("Version: 3.8.30", "3.8.3") is not None
    assert version_mismatch("Version: 3.8.3+12.gabc", "3.8.3") is not None


def test_missing_modules_names_lost_subpackages() -> None:
    tracked = ["prefect_aws/__init__.py", "prefect_aws/workers/__init__.py", "prefect_aws/workers/ecs.py",
               "tests/test_ecs.py", "README.md", "prefect_aws/templates/x.json"]
    wheel = ["prefect_aws/__init__.py", "prefect_aws-0.7.11.dist-info/METADATA"]
    assert missing_modules(wheel, tracked) == ["prefect_aws/workers/__init__.py", "prefect_aws/workers/ecs.py"]
    assert missing_modules(wheel + ["prefect_aws/workers/__init__.py", "prefect_aws/workers/ecs.py"], tracked) == []


def test_missing_modules_maps_src_layout() -> None:
    assert missing_modules(["prefect/__init__.py"], ["src/prefect/__init__.py", "src/prefect/cli/root.py"]) == [
        "prefect/cli/root.py"]


def test_changed_versions_name_what_moved_came_and_went() -> None:
    before = {"fastapi": "0.150.0", "Pydantic": "2.13.4", "old-thing": "1.0"}
    after = {"fastapi": "0.165.0", "pydantic": "2.13.4", "new_thing": "2.0"}
    assert changed_versions(before, after) == ["fastapi 0.150.0 -> 0.165.0", "new-thing 2.0 (new)", "old-thing 1.0 (gone)"]
    assert changed_versions(before, before) == []
