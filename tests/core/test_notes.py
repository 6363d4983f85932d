"""Release-notes rules: the previous published version, what a version names, git log lines, the Markdown."""

from __future__ import annotations

from tasks.core.notes import (
    Commit,
    PackageNotes,
    VersionRef,
    fork_commits,
    has_version,
    parse_commits,
    parse_marked,
    previous_version,
    public_tag,
    released,
    render_markdown,
    summary,
    summary_lines,
    touching,
    version_ref,
)

FILES = [
    "orbit-1.0.1+orbit.4.geac97b5-py3-none-any.whl", "orbit-1.0.1+orbit.4.geac97b5.tar.gz",
    "orbit-1.0.1+orbit.5.g1234567-py3-none-any.whl", "orbit-1.0.1.tar.gz", "orbit-1.0.0-py3-none-any.whl",
    "orbit-1.1.0+orbit.1.gabcdef0-py3-none-any.whl", "index.html", "orbit-notaversion.zip",
]


def test_previous_is_the_highest_version_below_the_published_one() -> None:
    assert previous_version(FILES, "1.0.1+orbit.5.g1234567") == "1.0.1+orbit.4.geac97b5"
    assert previous_version(FILES, "1.0.1+orbit.4.geac97b5") == "1.0.1", "a local version sorts above its public one"
    assert previous_version(FILES, "1.0.1") == "1.0.0"
    assert previous_version(FILES, "1.0.0") is None, "first release"
    assert previous_version([], "2.0.0") is None
    assert previous_version(FILES, "1.0.2") == "1.0.1+orbit.5.g1234567", "a higher version on the index is ignored"


def test_has_version_compares_versions_not_strings() -> None:
    assert has_version(FILES, "1.0.1+orbit.4.geac97b5")
    assert has_version(FILES, "1.0.1.0"), "1.0.1.0 is 1.0.1"
    assert not has_version(FILES, "1.0.2")


def test_a_version_names_its_commit_or_its_tag() -> None:
    assert version_ref("1.0.1+orbit.4.geac97b5", "{version}", "") == VersionRef("commit", "eac97b5")
    assert version_ref("0.2.0+acme.12.gdd51d1d", "{name}-{version}", "orbit-aws") == VersionRef("commit", "dd51d1d")
    assert version_ref("0.2.0", "{name}-{version}", "orbit-aws") == VersionRef("tag", "orbit-aws-0.2.0")
    assert version_ref("3.8.3", "v{version}", "") == VersionRef("tag", "v3.8.3")
    named_nothing = version_ref("1.0.1+acme.42", "{version}", "")
    assert named_nothing.kind == "none" and named_nothing.ref is None and "no g<sha>" in named_nothing.why
    assert public_tag("0.2.0+acme.12.gdd51d1d", "{name}-{version}", "orbit-aws") == "orbit-aws-0.2.0"


def test_git_log_lines_are_read() -> None:
    assert parse_commits("aaa fix: one\nbbb feat: two words\n\n") == [Commit("aaa", "fix: one"),
                                                                       Commit("bbb", "feat: two words")]
    marked = parse_marked("+ aaa fix: new here\n= bbb fix: upstream has it\n> ccc plain right side\n")
    assert marked == {"aaa": ("fix: new here", False), "bbb": ("fix: upstream has it", True),
                      "ccc": ("plain right side", False)}
    assert list(marked) == ["aaa", "bbb", "ccc"], "the order of git log is kept"


def test_fork_commits_touching_a_package_are_marked() -> None:
    marked = {"aaa": ("fix: mine", False), "bbb": ("fix: absorbed", True), "ccc": ("feat: other package", False)}
    found = fork_commits(marked, {"aaa", "bbb"}, {"aaa"})
    assert found == [Commit("aaa", "fix: mine", False, True), Commit("bbb", "fix: absorbed", True, False)]
    unknown = fork_commits(marked, {"aaa"}, None)
    assert unknown == [Commit("aaa", "fix: mine", False, None)], "new is unknown without the previous commit"
    ordered = [Commit("x", "1"), Commit("y", "2"), Commit("z", "3")]
    assert touching(ordered, {"z", "x"}) == [Commit("x", "1"), Commit("z", "3")]


def test_a_package_is_released_when_any_of_its_files_was_uploaded() -> None:
    files = [{"package": "orbit", "status": "up-to-date"}, {"package": "orbit", "status": "uploaded"},
             {"package": "orbit-slack", "status": "up-to-date"}, {"package": "orbit-slack", "status": "up-to-date"},
             {"name": "no-package.whl", "status": "uploaded"}]
    assert released(files) == {"orbit": "uploaded", "orbit-slack": "unchanged"}


def sample() -> list[PackageNotes]:
    orbit = PackageNotes(
        "orbit", "core", "1.0.1+orbit.5.g1234567", "uploaded", previous="1.0.1+orbit.4.geac97b5",
        previous_commit="eac97b5a8709e54e023332476457b7bbaced134c", upstream_from="1.0.1", upstream_to="1.1.0",
        upstream=[Commit("1796867aaaa", "feat(core): add a <farewell> helper")],
        fork=[Commit("1234567bbbb", "fix(core): fork_fix in *greeting*", False, True),
              Commit("eac97b5cccc", "feat(core): fork-wide default", True, False)])
    gone = PackageNotes("orbit-aws", "integration", "0.2.0+orbit.6.g7654321", "uploaded",
                        previous="0.2.0+orbit.4.g192a0d1", missing="the commit of 0.2.0+orbit.4.g192a0d1 is unknown",
                        upstream_from="orbit-aws-0.2.0", upstream_to="orbit-aws-0.2.0",
                        fork=[Commit("7654321dddd", "fix(aws): endpoint", False, None)])
    flows = PackageNotes("orbit-flows", "flows", "0.1.0+orbit.7.g0e1a377", "uploaded", upstream_to="6cb4478")
    slack = PackageNotes("orbit-slack", "integration", "0.1.0", "unchanged")
    return [orbit, gone, flows, slack]


def test_markdown_is_a_release_body() -> None:
    text = render_markdown(sample(), "upstream/main", "6cb4478ffff", "1234567bbbb")
    assert text.startswith("## Release notes\n")
    assert "compared with upstream `upstream/main` at `6cb4478`" in text
    assert "### orbit 1.0.1+orbit.5.g1234567" in text
    assert "Previous published version: 1.0.1+orbit.4.geac97b5 (commit `eac97b5`)." in text
    assert "**From upstream** (1.0.1 → 1.1.0): 1 commit touching it" in text
    assert "- `1796867` feat(core): add a &lt;farewell&gt; helper" in text, "no raw HTML from a subject"
    assert "- `1234567` fix(core): fork\\_fix in \\*greeting\\* (**new**)" in text
    assert "- `eac97b5` feat(core): fork-wide default (absorbed upstream)" in text
    assert "(1 new, 1 absorbed upstream)" in text
    assert "Note: the commit of 0.2.0+orbit.4.g192a0d1 is unknown." in text
    assert "- `7654321` fix(aws): endpoint\n" in text, "new or not is unknown: no mark"
    assert "First release on this index" in text and "not listed, no tag or commit to start from" in text
    assert "Unchanged (already on the index): orbit-slack 0.1.0" in text
    assert "### orbit-slack" not in text


def test_markdown_says_when_nothing_was_released() -> None:
    text = render_markdown([PackageNotes("orbit", "core", "1.0.1", "unchanged")], "origin/main", "a" * 40, "b" * 40)
    assert "No package has a new version in this run." in text and "Unchanged (already on the index): orbit 1.0.1" in text


def test_summary_lines() -> None:
    assert summary(sample()) == "3 released, 1 unchanged, 1 new fork commits: notes.md"
    lines = summary_lines(sample())
    assert lines[0] == ("orbit 1.0.1+orbit.5.g1234567 (since 1.0.1+orbit.4.geac97b5): 1 upstream commit, "
                        "2 fork commits (1 new)")
    assert lines[1].endswith("; the commit of 0.2.0+orbit.4.g192a0d1 is unknown")
    assert lines[2].startswith("orbit-flows 0.1.0+orbit.7.g0e1a377 (first release)")
    assert len(lines) == 3
