"""Which workflows a config feeds, branch filters, and diffs: pure rules, no files."""

from __future__ import annotations

import pytest

from tasks.core.config import Config, parse_config_text
from tasks.core.errors import ConfigError
from tasks.core.workflows import choose_workflows, file_status, parse_only, push_filter, unified_diff, workflow_context

FORK = '[fork]\npath = "prefect"\nupstream = "https://example.com/up.git"\norigin = "https://example.com/fork.git"\n'
FLOWS = '[flows]\npath = "flows"\n'


def env(name: str, branch: str | None = None) -> str:
    line = f'branch = "{branch}"\n' if branch else ""
    return f'[environments.{name}]\nprefect_api_url = "https://{name}.example/api"\nwork_pool = "{name}"\n{line}'


def config(*sections: str) -> Config:
    return parse_config_text('[project]\nname = "acme"\n' + "\n".join(sections), "pipeline.toml")


def test_only_the_workflows_the_config_feeds() -> None:
    chosen, skipped = choose_workflows(config(FORK), [], "pipeline.toml")
    assert chosen == ["sync-upstream", "release", "pull-request"]
    assert skipped == {"deploy": "the config has no [flows] section", "promote": "the config has no [flows] section"}
    chosen, skipped = choose_workflows(config(FLOWS, env("dev", "*")), [], "pipeline.toml")
    assert chosen == ["deploy", "pull-request"]
    assert skipped["promote"] == "promoting needs at least two [environments.<name>]"
    chosen, skipped = choose_workflows(config(FLOWS, env("dev"), env("prod")), [], "pipeline.toml")
    assert chosen == ["promote", "pull-request"] and skipped["deploy"] == "no [environments.<name>] has a `branch`"


def test_a_config_with_nothing_to_plan_has_no_pull_request_workflow() -> None:
    chosen, skipped = choose_workflows(config(), [], "pipeline.toml")
    assert chosen == [] and skipped["pull-request"].startswith("the config has neither [fork] nor [flows]")


def test_asking_for_a_workflow_the_config_cannot_feed_is_an_error() -> None:
    with pytest.raises(ConfigError) as err:
        choose_workflows(config(FORK), ["deploy"], "pipeline.toml")
    assert "deploy: the config has no [flows] section" in str(err.value)
    with pytest.raises(ConfigError) as err:
        choose_workflows(config(FLOWS, '[github]\nworkflows = ["release"]\n'), [], "pipeline.toml")
    assert "[github] workflows" in str(err.value.where)


def test_github_workflows_limits_the_set_and_only_overrides_it() -> None:
    loaded = config(FORK, '[github]\nworkflows = ["sync-upstream"]\n')
    assert choose_workflows(loaded, [], "p")[0] == ["sync-upstream"]
    assert choose_workflows(loaded, ["release"], "p")[0] == ["release"]


def test_only_names_are_checked() -> None:
    assert parse_only(" release, deploy ") == ["release", "deploy"]
    assert parse_only("") == []
    with pytest.raises(ConfigError, match="unknown workflow"):
        parse_only("releases")


def test_unknown_github_keys_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="github.runs_on: unknown key"):
        config('[github]\nruns_on = "x"\n')
    with pytest.raises(ConfigError, match="github.python"):
        config('[github]\npython = "3"\n')


@pytest.mark.parametrize(("pattern", "expected"), [
    ("main", "main"), ("*", "**"), ("release/*", "release/**"), ("v?.x", "v**.x"), ("hot[fx]*", "hot**"), ("**", "**"),
])
def test_push_filters_match_at_least_what_the_deploy_stage_matches(pattern: str, expected: str) -> None:
    assert push_filter(pattern) == expected


@pytest.mark.parametrize("branch", ["${{ github.head_ref }}", "!main", "a\nb"])
def test_branches_that_cannot_be_a_filter_are_refused(branch: str) -> None:
    with pytest.raises(ConfigError, match="environments.dev.branch"):  # by the config itself, or by the workflows
        workflow_context(config(FLOWS, env("dev", branch.replace("\n", "\\n"))), "pipeline.toml", ".forkflow",
                         "pipeline.toml")


def test_paths_that_cannot_be_written_safely_are_refused() -> None:
    with pytest.raises(ConfigError, match="cannot be written into a workflow safely"):
        workflow_context(config(FORK), "my config/pipeline.toml", ".forkflow", "p")


def test_status_and_diff() -> None:
    assert file_status(None, "a\n") == "created"
    assert file_status("a\n", "a\n") == "unchanged"
    assert file_status("a\n", "b\n") == "updated"
    assert unified_diff("a\n", "a\n", "x.yml") == ""
    assert unified_diff(None, "a\n", "x.yml").splitlines()[:2] == ["--- /dev/null", "+++ b/x.yml"]
    changed = unified_diff("a\nb", "a\nc\n", "x.yml")
    assert "-b\n" in changed and "+c\n" in changed and changed.startswith("--- a/x.yml\n+++ b/x.yml\n")
