"""Constraints from the fork's lock file: the user's pins win, the fork's packages are never pinned."""

from __future__ import annotations

from tasks.core.pins import lock_constraints, lock_dependencies, pinned_names, requirement_name

EXPORTED = """\
aiosqlite==0.22.1
fastapi==0.141.1
    # via prefect
pywin32==311 ; sys_platform == 'win32'
Pydantic_Core==2.41.5
prefect-aws==0.7.7
-e ./src/integrations/prefect-gcp
"""


def test_the_users_pins_and_the_forks_packages_are_left_out() -> None:
    own = "# ours\nfastapi==0.150.0  # newer ones break the UI routes\n-c more.txt\n"
    kept = lock_constraints(EXPORTED, own, ["prefect", "prefect_aws", "prefect-gcp"], {})
    assert kept == "aiosqlite==0.22.1\npywin32==311 ; sys_platform == 'win32'\nPydantic_Core==2.41.5\n"


LOCK = {"package": [
    {"name": "fastapi", "dependencies": [{"name": "pydantic"}, {"name": "starlette"}]},
    {"name": "pydantic", "dependencies": [{"name": "pydantic-core"}, {"name": "typing-extensions"}]},
    {"name": "Pydantic_Core", "dependencies": [{"name": "typing-extensions"}]},
    {"name": "starlette", "dependencies": [{"name": "anyio"}]},
    {"name": "aiosqlite"},
]}


def test_what_a_pinned_package_needs_in_the_lock_is_left_to_the_resolver() -> None:
    kept = lock_constraints(EXPORTED, "pydantic==2.14.0\n", [], LOCK)
    assert "Pydantic_Core" not in kept, "pydantic 2.14 needs its own pydantic-core, not the lock's"
    assert "fastapi==0.141.1" in kept and "aiosqlite==0.22.1" in kept
    assert lock_dependencies(LOCK, ["FastAPI"]) == {"fastapi", "pydantic", "pydantic-core", "typing-extensions",
                                                    "starlette", "anyio"}
    assert lock_dependencies(LOCK, ["not-in-the-lock"]) == {"not-in-the-lock"}


def test_names_are_read_the_way_pip_reads_them() -> None:
    assert requirement_name("Pydantic_Core==2.41.5") == "pydantic-core"
    assert requirement_name("pywin32==311 ; sys_platform == 'win32'") == "pywin32"
    assert requirement_name("fastapi==0.150.0  # a comment") == "fastapi"
    for line in ("", "# comment", "-c other.txt", "--index-url https://x", "not a requirement ==="):
        assert requirement_name(line) is None, line
    assert pinned_names("a==1\n# b==2\nC>=3\n") == {"a", "c"}
