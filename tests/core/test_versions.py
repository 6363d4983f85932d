"""Version rules: clean tags, package tags, pre-releases, next versions from commits."""

from __future__ import annotations

import pytest

from tasks.core.versions import (
    Change,
    bump_of,
    fork_version,
    is_fork_marker,
    label_of,
    newest,
    newest_tag,
    next_version,
    pretend_version_variable,
    strongest_bump,
    tag_regex,
    unshippable,
    with_static_version,
)

TAGS = ["1.0.0", "1.0.1", "1.1.0.dev1", "1.1.0rc1", "v2.0.0", "prefect-aws-0.7.11", "prefect-aws-0.8.0rc1",
        "prefect-snowflake-0.28.0rc1", "prefect-snowflake-0.27.3", "prefect-aws-extra-9.9.9", "not-a-version"]


def test_core_takes_newest_clean_tag() -> None:
    found = newest_tag(TAGS, "{version}")
    assert found is not None and found.tag == "1.0.1"


def test_prerelease_and_dev_tags_only_when_allowed() -> None:
    found = newest_tag(TAGS, "{version}", allow_prerelease=True)
    assert found is not None and found.tag == "1.1.0rc1"


def test_package_tags_match_only_their_package() -> None:
    aws = newest_tag(TAGS, "{name}-{version}", "prefect-aws")
    snowflake = newest_tag(TAGS, "{name}-{version}", "prefect-snowflake")
    assert aws is not None and aws.tag == "prefect-aws-0.7.11"
    assert snowflake is not None and snowflake.tag == "prefect-snowflake-0.27.3"
    rc = newest_tag(TAGS, "{name}-{version}", "prefect-snowflake", allow_prerelease=True)
    assert rc is not None and rc.tag == "prefect-snowflake-0.28.0rc1"


def test_no_matching_tag() -> None:
    assert newest_tag(TAGS, "{name}-{version}", "prefect-gcp") is None


def test_custom_core_pattern() -> None:
    found = newest_tag(TAGS, "v{version}")
    assert found is not None and found.tag == "v2.0.0"
    assert tag_regex("v{version}").match("v1.2.3") and not tag_regex("v{version}").match("1.2.3")


@pytest.mark.parametrize(
    ("message", "bump"),
    [("feat(flows): new flow", "minor"), ("fix: bug", "patch"), ("perf: faster", "patch"),
     ("feat!: drop py3.8", "major"), ("fix: x\n\nBREAKING CHANGE: removed y", "major"),
     ("docs: readme", "none"), ("chore: deps", "none"), ("random message", "none")],
)
def test_conventional_commit_bumps(message: str, bump: str) -> None:
    assert bump_of(message) == bump


def test_strongest_bump_and_next_version() -> None:
    assert strongest_bump(["fix: a", "feat: b", "docs: c"]) == "minor"
    assert strongest_bump([]) == "none"
    assert next_version("1.4.2", "major") == "2.0.0"
    assert next_version("1.4.2", "minor") == "1.5.0"
    assert next_version("1.4.2", "patch") == "1.4.3"
    assert next_version("1.4.2", "none") == "1.4.2"


def test_setuptools_scm_override_variable() -> None:
    assert pretend_version_variable("prefect-aws") == "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_PREFECT_AWS"
    assert pretend_version_variable("my.pkg_name") == "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_MY_PKG_NAME"


def test_a_changed_package_gets_a_version_naming_its_commit_and_an_unchanged_one_the_tag() -> None:
    assert fork_version("3.8.3", "acme", None) == "3.8.3"
    marked = fork_version("3.8.3", "acme", Change("dd51d1d0123456789abcdef0123456789abcdef0", 72))
    assert marked == "3.8.3+acme.72.gdd51d1d"
    assert is_fork_marker("acme.72.gdd51d1d") and is_fork_marker("acme.12")
    assert not is_fork_marker("12.gabc1234") and not is_fork_marker(None)


def test_fork_versions_satisfy_upstream_pins_and_sort_above_upstream_and_earlier_builds() -> None:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    week1 = Version(fork_version("3.8.3", "acme", Change("a" * 40, 72)))
    week2 = Version(fork_version("3.8.3", "acme", Change("0" * 40, 73)))
    assert Version("3.8.3") < week1 < week2 < Version("3.8.4")
    assert week1 in SpecifierSet("==3.8.3") and week1 in SpecifierSet(">=3.8") and week1 in SpecifierSet("~=3.8.0")
    assert week1 not in SpecifierSet("==3.8.2")


def test_newest_change_is_the_furthest_from_the_tag() -> None:
    near, far = Change("b" * 40, 3), Change("a" * 40, 9)
    assert newest([near, None, far]) == far and newest([None]) is None


def test_the_label_is_the_project_name_in_letters_and_digits() -> None:
    assert label_of("acme") == "acme" and label_of("Acme-Data_2") == "acmedata2" and label_of("42") == "fork42"


def test_a_static_version_is_set_in_the_project_table_only() -> None:
    text = '[tool.x]\nversion = "9"\n\n[project]\nname = "f"\nversion = "0.1.0"  # set by hand\n'
    assert with_static_version(text, "0.1.0+acme.3.gabcdef0") == (
        '[tool.x]\nversion = "9"\n\n[project]\nname = "f"\nversion = "0.1.0+acme.3.gabcdef0"  # set by hand\n')
    with pytest.raises(ValueError, match="no `version"):
        with_static_version('[project]\nname = "f"\n', "1")


def test_fallback_and_shallow_versions_cannot_ship() -> None:
    found = unshippable([{"name": "a", "version": "0.0.0", "version_source": "fallback"},
                         {"name": "b", "version": "1.0", "version_source": "tag", "shallow": True},
                         {"name": "c", "version": "1.0", "version_source": "commit"}])
    assert found == ["a 0.0.0: no version tag found (the fallback version)", "b 1.0: versioned in a shallow clone"]
