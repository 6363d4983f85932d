"""The sync plan: where branches start, fast-forward or rebase, pushes and leases, backups."""

from __future__ import annotations

from datetime import datetime

import pytest

from tasks.core.sync import (
    Apart,
    BranchTips,
    Commit,
    Conflict,
    Facts,
    SyncError,
    SyncPlan,
    backup_name,
    backups_to_prune,
    conflict_error,
    pair_rebased,
    plan_lines,
    plan_pushes,
    plan_sync,
    push_arguments,
    start_tip,
    summary_markdown,
)

UP = "u" * 40
OLD_MAIN = "m" * 40
RELEASE = "r" * 40
ORIGIN_RELEASE = "o" * 40


def facts(main_vs_upstream: Apart = Apart(0, 3), release_vs_upstream: Apart = Apart(3, 2), *,
          origin_main: str | None = OLD_MAIN, origin_release: str | None = RELEASE) -> Facts:
    return Facts(
        fork="/fork",
        upstream_ref="upstream/main",
        upstream_main=UP,
        main=BranchTips("main", OLD_MAIN, origin_main, Apart(0, 0)),
        release=BranchTips("release", RELEASE, origin_release, Apart(0, 0)),
        main_start=OLD_MAIN,
        release_start=RELEASE,
        main_vs_upstream=main_vs_upstream,
        release_vs_upstream=release_vs_upstream,
        upstream_commits=tuple(Commit(f"{i}" * 40, f"upstream {i}") for i in range(main_vs_upstream.right)),
        custom_commits=tuple(Commit(f"c{i}".ljust(40, "0"), f"custom {i}") for i in range(release_vs_upstream.right)),
    )


class TestStartTip:
    def test_local_branch_when_it_equals_or_is_ahead_of_origin(self) -> None:
        assert start_tip(BranchTips("release", "a", "a", Apart(0, 0)), "/f") == "a"
        assert start_tip(BranchTips("release", "a", "b", Apart(2, 0)), "/f") == "a"

    def test_origin_when_the_local_branch_is_behind_or_missing(self) -> None:
        assert start_tip(BranchTips("release", "a", "b", Apart(0, 4)), "/f") == "b"
        assert start_tip(BranchTips("release", None, "b"), "/f") == "b"

    def test_local_only_branch(self) -> None:
        assert start_tip(BranchTips("release", "a", None), "/f") == "a"

    def test_diverged_local_and_origin_stop_with_both_counts(self) -> None:
        with pytest.raises(SyncError) as caught:
            start_tip(BranchTips("release", "a", "b", Apart(2, 5)), "/f")
        assert "2 commit(s) only here, 5 only on origin" in str(caught.value)
        assert "git -C /f rebase origin/release" in str(caught.value)

    def test_missing_everywhere_says_how_to_create_it(self) -> None:
        with pytest.raises(SyncError) as caught:
            start_tip(BranchTips("release", None, None), "/f")
        assert "exists neither" in caught.value.what and "git -C /f push origin release" in str(caught.value)


class TestPlanMain:
    def test_fast_forward_when_behind(self) -> None:
        plan = plan_sync(facts(Apart(0, 3)))
        assert (plan.main.action, plan.main.start, plan.main.target) == ("fast-forward", OLD_MAIN, UP)

    def test_up_to_date_when_equal(self) -> None:
        assert plan_sync(facts(Apart(0, 0))).main.action == "up-to-date"

    @pytest.mark.parametrize("apart", [Apart(2, 0), Apart(2, 3)])
    def test_own_commits_on_main_stop_and_leave_the_reset_to_the_user(self, apart: Apart) -> None:
        with pytest.raises(SyncError) as caught:
            plan_sync(facts(apart))
        message = str(caught.value)
        assert "cannot fast-forward" in message and "2 commit(s) upstream does not" in message
        assert "reset --hard upstream/main" in message and "never does it" in message


class TestPlanRelease:
    def test_rebase_when_custom_commits_are_not_on_top(self) -> None:
        plan = plan_sync(facts(release_vs_upstream=Apart(3, 2)))
        assert plan.release.action == "rebase" and plan.needs_backup
        assert plan.release.target == UP and plan.release.start == RELEASE

    def test_fast_forward_without_custom_commits(self) -> None:
        plan = plan_sync(facts(release_vs_upstream=Apart(3, 0)))
        assert (plan.release.action, plan.release.target) == ("fast-forward", UP)
        assert not plan.needs_backup

    def test_up_to_date_when_already_on_top_of_upstream(self) -> None:
        plan = plan_sync(facts(release_vs_upstream=Apart(0, 2)))
        assert (plan.release.action, plan.release.target) == ("up-to-date", RELEASE)


class TestPushes:
    def test_main_normally_and_release_with_an_explicit_lease(self) -> None:
        plan = plan_sync(facts())
        pushes = plan_pushes(plan, UP, "n" * 40)
        assert [(p.branch, p.lease) for p in pushes] == [("main", None), ("release", RELEASE)]
        args = push_arguments("origin", pushes)
        assert args[:2] == ["--atomic", "--porcelain"]
        assert f"--force-with-lease=refs/heads/release:{RELEASE}" in args
        assert "refs/heads/main:refs/heads/main" in args and "refs/heads/release:refs/heads/release" in args
        assert not any(a in ("--force", "-f", "--force-with-lease") or a.startswith("+") for a in args)

    def test_unchanged_refs_are_not_pushed(self) -> None:
        plan = plan_sync(facts(Apart(0, 0), Apart(0, 2)))
        assert plan_pushes(plan, OLD_MAIN, RELEASE) == []

    def test_release_missing_on_origin_is_leased_as_absent(self) -> None:
        plan = plan_sync(facts(origin_release=None))
        push = plan_pushes(plan, UP, "n" * 40)[-1]
        assert push.lease_option == "--force-with-lease=refs/heads/release:"


class TestBackups:
    def test_name_has_the_time_and_a_counter_when_taken(self) -> None:
        now = datetime(2026, 1, 5, 9, 30, 7)
        assert backup_name(now, []) == "backup-before-sync-20260105-093007"
        taken = ["backup-before-sync-20260105-093007", "backup-before-sync-20260105-093007-2"]
        assert backup_name(now, taken) == "backup-before-sync-20260105-093007-3"

    def test_prune_keeps_the_newest_and_ignores_other_branches(self) -> None:
        names = ["backup-before-sync-20260101-000000", "backup-before-sync-20260103-000000",
                 "backup-before-sync-20260102-000000", "backup-before-sync-20260103-000000-2", "release"]
        assert backups_to_prune(names, 2) == ["backup-before-sync-20260101-000000", "backup-before-sync-20260102-000000"]

    def test_prune_never_removes_this_syncs_backup(self) -> None:
        names = ["backup-before-sync-20260101-000000", "backup-before-sync-20260102-000000"]
        assert backups_to_prune(names, 0, protect="backup-before-sync-20260102-000000") == ["backup-before-sync-20260101-000000"]


def test_rebased_commits_are_paired_by_subject_and_dropped_ones_marked() -> None:
    before = [Commit("a1", "one"), Commit("a2", "two"), Commit("a3", "three")]
    after = [Commit("b1", "one"), Commit("b3", "three")]
    paired = pair_rebased(before, after)
    assert [(p.old, p.new) for p in paired] == [("a1", "b1"), ("a2", None), ("a3", "b3")]


def test_plan_survives_a_round_trip_through_json_data() -> None:
    plan = plan_sync(facts())
    assert SyncPlan.from_dict(plan.to_dict()) == plan


def test_plan_lines_list_commits_and_elide_old_ones() -> None:
    plan = plan_sync(facts(Apart(0, 30)))
    lines = plan_lines(plan, limit=5)
    assert lines[0].startswith("main: fast-forward") and "30 upstream commit(s)" in lines[0]
    assert "25 older commit(s) not shown" in lines[1]
    assert any(line.startswith("release: rebase 2 custom commit(s)") for line in lines)
    assert sum("custom" in line for line in lines if line.startswith("    *")) == 2


def test_conflict_message_names_files_commit_backup_and_commands() -> None:
    conflict = Conflict(Commit("c" * 40, "feat: fork thing"), ("src/a.py", "src/b.py"))
    err = conflict_error(conflict, "/fork", "release", UP, "backup-before-sync-20260101-000000", "git push ...")
    text = str(err)
    for expected in ["src/a.py", "src/b.py", "cccccccccc feat: fork thing", "backup-before-sync-20260101-000000",
                     "git checkout release", f"git rebase {UP}", "git rebase --continue", "git push ..."]:
        assert expected in text


def test_summary_markdown_has_counts_and_rebased_commits() -> None:
    report = {"status": "updated", "main": {"name": "main", "old": OLD_MAIN, "new": UP, "count": 3},
              "release": {"name": "release", "old": RELEASE, "new": "n" * 40,
                          "rebased": [{"subject": "feat: x", "old": "a" * 40, "new": "b" * 40}]},
              "backup": "backup-before-sync-20260101-000000", "pushed": ["refs/heads/main"]}
    text = summary_markdown(report)
    assert "## Sync: updated" in text and "3 from upstream" in text and "1 rebased" in text
    assert "`aaaaaaaaaa` -> `bbbbbbbbbb` feat: x" in text and "backup-before-sync-20260101-000000" in text
