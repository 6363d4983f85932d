"""Version rules: clean tags, package tags, pre-releases, next versions from commits."""

from __future__ import annotations

import pytest

from tasks.core.versions import (
    bump_of,
    is_fork_marker,
    newest_tag,
    next_version,
    pretend_version_variable,
    strongest_bump,
    tag_regex,
    with_fork_label,
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


def test_fork_label_marks_versions_only_when_asked() -> None:
    assert with_fork_label("3.8.3", None, 12) == "3.8.3"
    assert with_fork_label("3.8.3", "acme", 12) == "3.8.3+acme.12"
    assert is_fork_marker("acme.12") and not is_fork_marker("12.gabc1234") and not is_fork_marker(None)
