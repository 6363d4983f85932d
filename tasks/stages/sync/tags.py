"""Version tags in a sync: the facts tasks.core.sync_tags plans from, and the tag moves after a rebase.

sync:fetch lists the tags of both remotes (in the same ls-remote that reads
their branches) and of the clone, keeps the version tags (the fork's package
names from its checkout), and plans which upstream tags origin lacks and
which fork tags a rebase will move. sync:release moves those tags with the
rebased release branch in one ref transaction; sync:push pushes both kinds
in the branches' atomic push.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tasks.adapters.console import warn
from tasks.adapters.git import Git
from tasks.core.errors import ForkflowError
from tasks.core.sync import SyncPlan
from tasks.core.sync_tags import (
    MovedTag,
    TagFacts,
    TagMove,
    TagPlan,
    TagRef,
    moved_tag_object,
    plan_tags,
    version_tags,
)
from tasks.core.versions import tag_pattern
from tasks.pipeline.workspace import find_packages
from tasks.stages.sync.setup import SyncSetup

Listing = dict[str, tuple[str, str]]  # full ref -> (what it points at, the commit it peels to)


@dataclass(frozen=True)
class Remotes:
    """What both remotes showed at the start of the run: branches and tags."""

    upstream_heads: dict[str, str]
    origin_heads: dict[str, str]
    upstream_tags: dict[str, TagRef]
    origin_tags: dict[str, TagRef]


def heads_of(listing: Listing) -> dict[str, str]:
    return {ref.removeprefix("refs/heads/"): sha for ref, (sha, _) in listing.items() if ref.startswith("refs/heads/")}


def tags_of(listing: Listing) -> dict[str, TagRef]:
    return {ref.removeprefix("refs/tags/"): TagRef(ref.removeprefix("refs/tags/"), sha, commit)
            for ref, (sha, commit) in listing.items() if ref.startswith("refs/tags/")}


def tag_patterns(setup: SyncSetup, root: Path) -> list[tuple[str, str]]:
    """(tag pattern, package name) for the core and every package of the checkout at `root`."""
    rules = setup.settings.config.versions
    patterns = [(rules.core_tag, "")]
    try:
        packages = find_packages(setup.settings, root)
    except (ForkflowError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        warn(f"only core version tags (named like \"{rules.core_tag}\") are carried to origin: the packages in {root} "
             f"could not be read ({first})")
        return patterns
    return patterns + [tag_pattern(p.kind, p.name, rules.core_tag, rules.package_tag) for p in packages]


def only_versions(tags: dict[str, TagRef], names: set[str]) -> dict[str, TagRef]:
    return {name: tag for name, tag in tags.items() if name in names}


def plan_tag_work(git: Git, setup: SyncSetup, plan: SyncPlan, remotes: Remotes, root: Path,
                  local_tags: dict[str, tuple[str, str]] | None = None) -> TagPlan:
    """The tags to push and to move (or SyncError, before anything changes); `local_tags` as `Git.tags` gives
    them, when already read."""
    listed = git.tags() if local_tags is None else local_tags
    local_all = {name: TagRef(name, sha, commit) for name, (sha, commit) in listed.items()}
    versions = version_tags({*remotes.upstream_tags, *remotes.origin_tags, *local_all}, tag_patterns(setup, root))
    upstream = only_versions(remotes.upstream_tags, versions)
    origin = only_versions(remotes.origin_tags, versions)
    local = only_versions(local_all, versions)
    unsettled = [tag for name, tag in upstream.items() if name not in origin or origin[name].commit != tag.commit]
    on_main = frozenset(tag.commit for tag in unsettled) & git.history(plan.upstream_main) if unsettled else frozenset()
    rebase = plan.release.action == "rebase"
    custom = {commit.sha for commit in plan.custom_commits} if rebase else set()
    tagged = {tag.commit for tag in (*local.values(), *origin.values())} & custom
    facts = TagFacts(
        fork=str(setup.fork), release=plan.release.name, upstream=upstream, origin=origin, local=local,
        on_main=frozenset(on_main), custom=plan.custom_commits if rebase else (),
        absorbed=frozenset(git.absorbed(plan.upstream_main, plan.release.start)) if tagged else frozenset(),
        rebase=rebase,
    )
    tag_plan = plan_tags(facts)
    fetch_tag_objects(git, setup, [move for move in tag_plan.move if move.local is None and move.origin])
    return tag_plan


def fetch_tag_objects(git: Git, setup: SyncSetup, moves: Iterable[TagMove]) -> None:
    """The tag objects of origin's tags the clone lacks (an annotated one is re-made on its new commit)."""
    refs = [f"refs/tags/{move.name}" for move in moves]
    if refs:
        git.fetch_objects(setup.origin_url, refs)


def moved_tags(git: Git, placed: list[tuple[TagMove, str]]) -> list[MovedTag]:
    """Each tag on its rebased commit: a lightweight tag is the commit, an annotated one a new tag object
    with the same name, tagger and message."""
    moved = []
    for move, new in placed:
        old_object = move.local or move.origin
        assert old_object is not None
        annotated = old_object != move.commit
        target = git.make_tag_object(moved_tag_object(git.tag_text(old_object), new)) if annotated else new
        moved.append(MovedTag(move.name, move.commit, new, target, move.origin))
    return moved


def tag_ref_updates(moved: Iterable[MovedTag], local: dict[str, str | None]) -> list[str]:
    """`git update-ref --stdin` lines: each tag from the object the clone had (checked) to its new one."""
    lines = []
    for tag in moved:
        old = local.get(tag.name)
        lines.append(f"update refs/tags/{tag.name} {tag.object} {old}" if old else f"create refs/tags/{tag.name} {tag.object}")
    return lines
