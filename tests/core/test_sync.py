"""The sync plan: where branches start, fast-forward or rebase, pushes and leases, backups."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime

import pytest

from tasks.core.sync import (
    Apart,
    BranchTips,
    Commit,
    Conflict,
    Facts,
    Rebased,
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
from tasks.core.sync_tags import (
    MovedTag,
    TagFacts,
    TagPlan,
    TagRef,
    moved_tag_object,
    place_moves,
    plan_tags,
    tag_lines,
    tag_pushes,
    version_tags,
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


# -- version tags: which upstream tags go to origin, which fork tags follow the rebase --------------

PATTERNS = [("{version}", ""), ("{name}-{version}", "orbit-aws"), ("{name}-{version}", "orbit-gcp")]
MAIN_COMMIT, OTHER_COMMIT = "a" * 40, "b" * 40
CUSTOM = (Commit("c1".ljust(40, "0"), "feat: fork one"), Commit("c2".ljust(40, "0"), "fix(aws): fork two"))


def tag(name: str, commit: str, obj: str | None = None) -> TagRef:
    return TagRef(name, obj or commit, commit)


def tag_facts(*, upstream: Sequence[TagRef] = (), origin: Sequence[TagRef] = (), local: Sequence[TagRef] = (),
              on_main: AbstractSet[str] = frozenset({MAIN_COMMIT}), absorbed: AbstractSet[str] = frozenset(),
              rebase: bool = True) -> TagFacts:
    return TagFacts(fork="/fork", release="release", upstream={t.name: t for t in upstream},
                    origin={t.name: t for t in origin}, local={t.name: t for t in local},
                    on_main=frozenset(on_main), custom=CUSTOM, absorbed=frozenset(absorbed), rebase=rebase)


def test_version_tags_are_the_core_and_package_patterns_only() -> None:
    names = ["1.2.3", "1.3.0.dev1", "orbit-aws-0.2.0", "orbit-gcp-0.1.0rc1", "orbit-slack-0.1.0", "nightly", "v1.2.3"]
    assert version_tags(names, PATTERNS) == {"1.2.3", "1.3.0.dev1", "orbit-aws-0.2.0", "orbit-gcp-0.1.0rc1"}


class TestTagPushes:
    def test_upstream_tags_on_main_that_origin_lacks(self) -> None:
        plan = plan_tags(tag_facts(upstream=[tag("1.0.0", MAIN_COMMIT), tag("1.0.1", MAIN_COMMIT, "t" * 40),
                                             tag("0.9.0", OTHER_COMMIT)], origin=[tag("1.0.0", MAIN_COMMIT)]))
        assert [(t.name, t.object) for t in plan.push] == [("1.0.1", "t" * 40)], "0.9.0 is not on main's history"
        pushes = tag_pushes(plan, [])
        assert [(p.refspec, p.lease_option) for p in pushes] == [("refs/tags/1.0.1:refs/tags/1.0.1", None)]

    def test_same_commit_through_another_tag_object_is_left_alone(self) -> None:
        plan = plan_tags(tag_facts(upstream=[tag("1.0.0", MAIN_COMMIT, "t" * 40)], origin=[tag("1.0.0", MAIN_COMMIT)]))
        assert plan.empty

    def test_origin_tag_on_another_commit_refuses_naming_both_commits_and_the_fix(self) -> None:
        with pytest.raises(SyncError) as caught:
            plan_tags(tag_facts(upstream=[tag("1.0.1", MAIN_COMMIT)], origin=[tag("1.0.1", OTHER_COMMIT, "o" * 40)]))
        message = str(caught.value)
        assert "tag 1.0.1: upstream has it on commit aaaaaaaaaa, origin on commit bbbbbbbbbb" in message
        assert f"--force-with-lease=refs/tags/1.0.1:{'o' * 40} origin refs/tags/1.0.1" in message
        assert "nothing was pushed" in message and "never overwrites a tag" in message

    def test_an_unrelated_upstream_tag_elsewhere_on_origin_is_not_a_conflict(self) -> None:
        assert plan_tags(tag_facts(upstream=[tag("0.9.0", OTHER_COMMIT)], origin=[tag("0.9.0", "d" * 40)])).empty


class TestTagMoves:
    def test_fork_tags_on_custom_commits_move_when_the_release_is_rebased(self) -> None:
        c1, c2 = CUSTOM
        plan = plan_tags(tag_facts(local=[tag("orbit-aws-0.2.1", c2.sha), tag("1.0.0", MAIN_COMMIT)],
                                   origin=[tag("orbit-aws-0.2.1", c2.sha), tag("orbit-gcp-0.3.0", c1.sha, "g" * 40)]))
        assert [(m.name, m.commit, m.local, m.origin) for m in plan.move] == [
            ("orbit-aws-0.2.1", c2.sha, c2.sha, c2.sha), ("orbit-gcp-0.3.0", c1.sha, None, "g" * 40)]
        assert any("would move tag orbit-aws-0.2.1 (here and on origin)" in line for line in tag_lines(plan, would=True))

    def test_no_rebase_moves_nothing(self) -> None:
        assert plan_tags(tag_facts(local=[tag("orbit-aws-0.2.1", CUSTOM[1].sha)], rebase=False)).empty

    def test_a_tag_on_a_commit_upstream_absorbed_refuses_with_the_commands(self) -> None:
        c2 = CUSTOM[1]
        with pytest.raises(SyncError) as caught:
            plan_tags(tag_facts(local=[tag("orbit-aws-0.2.1", c2.sha)], origin=[tag("orbit-aws-0.2.1", c2.sha)],
                                absorbed={c2.sha}))
        message = str(caught.value)
        assert f"tag orbit-aws-0.2.1: on the 'release' commit {c2.sha[:10]} fix(aws): fork two" in message
        assert "upstream already has its change" in message
        assert "git -C /fork tag -f orbit-aws-0.2.1 <commit>" in message and "git -C /fork tag -d orbit-aws-0.2.1" in message
        assert f"--force-with-lease=refs/tags/orbit-aws-0.2.1:{c2.sha} origin :refs/tags/orbit-aws-0.2.1" in message

    def test_clone_and_origin_disagreeing_on_a_fork_tag_refuses(self) -> None:
        with pytest.raises(SyncError) as caught:
            plan_tags(tag_facts(local=[tag("orbit-aws-0.2.1", CUSTOM[1].sha)], origin=[tag("orbit-aws-0.2.1", OTHER_COMMIT)]))
        assert "on commit c200000000 in the clone but on commit bbbbbbbbbb on origin" in str(caught.value)

    def test_moves_follow_the_rebased_pairs_and_a_missing_pair_refuses(self) -> None:
        c1, c2 = CUSTOM
        plan = plan_tags(tag_facts(local=[tag("orbit-aws-0.2.1", c2.sha)], origin=[tag("orbit-aws-0.2.1", c2.sha)]))
        placed = place_moves(plan.move, [Rebased(c1.subject, c1.sha, "n1" * 20), Rebased(c2.subject, c2.sha, "n2" * 20)],
                             "/fork", "release")
        assert [(m.name, new) for m, new in placed] == [("orbit-aws-0.2.1", "n2" * 20)]
        moved = MovedTag("orbit-aws-0.2.1", c2.sha, "n2" * 20, "n2" * 20, c2.sha)
        push = tag_pushes(plan, [moved])[0]
        assert push.refspec == "refs/tags/orbit-aws-0.2.1:refs/tags/orbit-aws-0.2.1"
        assert push.lease_option == f"--force-with-lease=refs/tags/orbit-aws-0.2.1:{c2.sha}"
        with pytest.raises(SyncError) as caught:
            place_moves(plan.move, [Rebased(c2.subject, c2.sha, None)], "/fork", "release")
        assert "so it was not applied" in str(caught.value) and "orbit-aws-0.2.1" in str(caught.value)

    def test_a_moved_tag_only_the_clone_has_is_not_pushed(self) -> None:
        plan = plan_tags(tag_facts(local=[tag("orbit-aws-0.2.1", CUSTOM[1].sha)]))
        assert tag_pushes(plan, [MovedTag("orbit-aws-0.2.1", CUSTOM[1].sha, "n" * 40, "n" * 40, None)]) == []


def test_an_annotated_tag_is_remade_on_the_new_commit_without_its_signature() -> None:
    text = (f"object {'c' * 40}\ntype commit\ntag orbit-aws-0.2.1\ntagger T <t@x> 1 +0000\n\nrelease notes\n"
            "-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n")
    moved = moved_tag_object(text, "n" * 40)
    assert moved.startswith(f"object {'n' * 40}\ntype commit\ntag orbit-aws-0.2.1\n")
    assert moved.endswith("\n\nrelease notes\n") and "SIGNATURE" not in moved


def test_tag_plan_round_trip_and_summary() -> None:
    plan = plan_tags(tag_facts(upstream=[tag("1.0.1", MAIN_COMMIT)], local=[tag("orbit-aws-0.2.1", CUSTOM[1].sha)]))
    assert TagPlan.from_dict(plan.to_dict()) == plan and TagPlan.from_dict(None).empty
    report = {"status": "updated", "tags": {"pushed": ["1.0.1"],
                                            "moved": [{"name": "orbit-aws-0.2.1", "old": "a" * 40, "new": "b" * 40}]}}
    text = summary_markdown(report)
    assert "Tags pushed: `1.0.1`" in text and "`orbit-aws-0.2.1` aaaaaaaaaa -> bbbbbbbbbb" in text
