"""Package discovery, input ownership, the client recipe and built file name checks."""

from __future__ import annotations

import pytest

from tasks.core.errors import ConfigError
from tasks.core.packages import (
    Package,
    check_dist_names,
    detect_backend,
    discover,
    input_hash,
    owns,
    staged_files,
    without_skipped,
)

CORE = {"project": {"name": "prefect", "dynamic": ["version"]}, "tool": {"hatch": {"version": {"source": "versioningit"}}}}
CLIENT = {"project": {"name": "prefect-client", "dynamic": ["version"]}, "tool": {"hatch": {"version": {"source": "versioningit"}}}}
AWS = {"project": {"name": "prefect-aws", "dynamic": ["version"]}, "tool": {"setuptools_scm": {}},
       "build-system": {"requires": ["setuptools", "setuptools_scm"]}}
FLOWS = {"project": {"name": "flows", "version": "0.3.0"}}


def packages() -> list[Package]:
    return discover(("." , CORE), ("client", CLIENT), [("src/integrations/prefect-aws", AWS)], ("flows", FLOWS),
                    ("src/prefect/cli", "src/prefect/server"))


def test_backends() -> None:
    assert detect_backend(CORE) == "versioningit"
    assert detect_backend(AWS) == "setuptools_scm"
    assert detect_backend(FLOWS) == "static"
    hatch_vcs = {"project": {"name": "x", "dynamic": ["version"]}, "tool": {"hatch": {"version": {"source": "vcs"}}}}
    assert detect_backend(hatch_vcs) == "hatch-vcs"


def test_discover_kinds_and_excludes() -> None:
    found = {p.name: p for p in packages()}
    assert [p.kind for p in packages()] == ["core", "client", "integration", "flows"]
    core = found["prefect"]
    assert owns(core, "src/prefect/flows.py")
    assert not owns(core, "src/integrations/prefect-aws/prefect_aws/s3.py")
    assert not owns(core, "flows/hello.py") and not owns(core, "client/pyproject.toml")
    assert owns(found["prefect-aws"], "src/integrations/prefect-aws/prefect_aws/s3.py")
    assert owns(found["prefect-client"], "client/pyproject.toml")
    assert found["flows"].static_version == "0.3.0"


def test_client_recipe_trims_and_overlays() -> None:
    client = {p.name: p for p in packages()}["prefect-client"]
    files = ["pyproject.toml", "README.md", "src/prefect/__init__.py", "src/prefect/cli/root.py",
             "src/prefect/server/api/server.py", "src/prefect/client/orchestration.py", "client/pyproject.toml",
             "src/integrations/prefect-aws/pyproject.toml"]
    staged = staged_files(client, files)
    assert staged["pyproject.toml"] == "client/pyproject.toml"
    assert "src/prefect/client/orchestration.py" in staged
    assert not any(dest.startswith(("src/prefect/cli/", "src/prefect/server/", "src/integrations/")) for dest in staged)


def test_input_hash_depends_only_on_own_files() -> None:
    found = {p.name: p for p in packages()}
    entries = {"src/prefect/a.py": "1", "src/integrations/prefect-aws/x.py": "2"}
    touched = {**entries, "src/integrations/prefect-aws/x.py": "3"}
    assert input_hash(found["prefect"], entries, {"version": "1"}) == input_hash(found["prefect"], touched, {"version": "1"})
    assert input_hash(found["prefect-aws"], entries, {}) != input_hash(found["prefect-aws"], touched, {})
    assert input_hash(found["prefect"], entries, {"version": "1"}) != input_hash(found["prefect"], entries, {"version": "2"})


def test_dist_names_must_carry_name_and_version() -> None:
    good = ["prefect_aws-0.7.11-py3-none-any.whl", "prefect_aws-0.7.11.tar.gz"]
    assert check_dist_names(good, "prefect-aws", "0.7.11") == []
    dirty = ["prefect_aws-0.7.12.dev3+g1a2b3c4-py3-none-any.whl", "prefect_aws-0.7.11.tar.gz"]
    assert any("expected prefect-aws 0.7.11" in p for p in check_dist_names(dirty, "prefect-aws", "0.7.11"))
    assert check_dist_names(good[:1], "prefect-aws", "0.7.11") == ["no sdist was built"]


def test_input_changes_say_which_file_and_setting_changed() -> None:
    from tasks.core.packages import input_changes

    before = {"files": {"a.py": "1", "b.py": "2", "gone.py": "3"}, "extra": {"version": "1.0.1", "recipe": "auto"}}
    now = {"files": {"a.py": "1", "b.py": "9", "new.py": "4"}, "extra": {"version": "1.0.2", "recipe": "auto"}}
    assert input_changes(before, now) == "b.py changed, new.py added, gone.py removed, 1 more"
    assert input_changes(before, now, shown=9) == "b.py changed, new.py added, gone.py removed, version 1.0.1 -> 1.0.2"
    assert input_changes(now, now) == "inputs changed"


def test_skipped_packages_are_left_out_but_their_folders_stay_out_of_the_core() -> None:
    dbt = {"project": {"name": "prefect-dbt", "dynamic": ["version"]}, "tool": {"setuptools_scm": {}}}
    found = discover((".", CORE), ("client", CLIENT), [("src/integrations/prefect-aws", AWS),
                                                       ("src/integrations/prefect-dbt", dbt)], None, ())
    kept = without_skipped(found, {"prefect-aws": ["boto3>=1"]}, ["Prefect_DBT", "prefect-client"])
    assert [p.name for p in kept] == ["prefect", "prefect-aws"]
    assert not owns(kept[0], "src/integrations/prefect-dbt/prefect_dbt/cli.py")
    assert without_skipped(found, {}, []) == found


def test_skip_refuses_unknown_names_the_core_and_a_needed_package() -> None:
    shell = {"project": {"name": "prefect-shell", "dynamic": ["version"]}, "tool": {"setuptools_scm": {}}}
    found = discover((".", CORE), None, [("src/integrations/prefect-aws", AWS), ("src/integrations/prefect-shell", shell)],
                     ("flows", FLOWS), ())
    with pytest.raises(ConfigError, match="no package named prefect-dbtt in the fork") as unknown:
        without_skipped(found, {}, ["prefect-dbtt"])
    assert "prefect-aws, prefect-shell" in str(unknown.value)
    for fixed in ("prefect", "flows"):
        with pytest.raises(ConfigError, match=f"{fixed} cannot be skipped"):
            without_skipped(found, {}, [fixed])
    with pytest.raises(ConfigError, match="prefect-aws depends on prefect-shell, which .packages. skip leaves out"):
        without_skipped(found, {"prefect-aws": ["prefect-shell>=0.3; python_version >= '3.9'"]}, ["prefect-shell"])


def test_a_packages_own_files_are_found_by_its_run_of_the_sorted_listing() -> None:
    """The bisected run of a plain folder's files is exactly what the plain filter finds, for paths that share
    the folder's name as a prefix (a sibling folder, a file named like the folder), and for packages that are
    not a plain folder (the root with excludes, a client recipe)."""
    from tasks.core.packages import owned_entries, owned_files

    paths = ["src/integrations/orbit-aws", "src/integrations/orbit-aws-extra/x.py", "src/integrations/orbit-aws.txt",
             "src/integrations/orbit-aws/a.py", "src/integrations/orbit-aws/sub/b.py", "src/integrations/orbit-aw/c.py",
             "src/integrations/orbit-gcp/d.py", "src/orbit/e.py", "client/pyproject.toml", "pyproject.toml"]
    entries = {path: f"id-{index}" for index, path in enumerate(reversed(paths))}
    packages = [Package("orbit-aws", "integration", "src/integrations/orbit-aws", "hatchling"),
                Package("orbit-gcp", "integration", "src/integrations/orbit-gcp/", "hatchling"),
                Package("orbit", "core", ".", "hatchling", excludes=("src/integrations",)),
                Package("orbit-client", "client", ".", "hatchling", excludes=("src/integrations",), client_recipe="client"),
                Package("none", "integration", "src/integrations/orbit-none", "hatchling")]
    for package in packages:
        assert owned_entries(package, entries) == sorted(owned_files(package, entries)), package.name
    assert owned_entries(packages[0], entries) == ["src/integrations/orbit-aws", "src/integrations/orbit-aws/a.py",
                                                   "src/integrations/orbit-aws/sub/b.py"]
    entries["src/integrations/orbit-aws/new.py"] = "id-new"  # a new listing of another length is sorted again
    assert "src/integrations/orbit-aws/new.py" in owned_entries(packages[0], entries)


def test_a_core_with_excludes_and_a_recipe_owns_by_runs_exactly_what_owns_says() -> None:
    """The runs of the sorted listing (a core: everything less the integrations, plus the client recipe) give the
    same files as `owns` file by file, over listings where names share prefixes in every order that sorting
    can put them ('-', '.', '/' and '0' sort around '/'), with excludes written with slashes, as files, or as '.'."""
    import random

    from tasks.core.packages import owned_entries, owned_files

    rng = random.Random(7)
    parts = ["src", "integrations", "a", "a-b", "a.b", "a0", "ab", "client", "b", "x.py", "é", "\U0010ffff", "a\U0010ffff"]
    for _ in range(300):
        paths = {"/".join(rng.choice(parts) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(0, 40))}
        entries = {path: "id" for path in paths}
        folders = ["/".join(rng.choice(parts) for _ in range(rng.randint(1, 3))) for _ in range(4)]
        excludes = tuple(rng.choice([f, f + "/", "/" + f, "."]) for f in folders[:rng.randint(0, 3)])
        package = Package("orbit", "core", rng.choice([".", "", "src", "src/", folders[3]]), "hatchling",
                          excludes=excludes, client_recipe=rng.choice([None, "client", folders[2]]))
        assert owned_entries(package, entries) == sorted(owned_files(package, entries)), (package, sorted(paths))
