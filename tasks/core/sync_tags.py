"""Which version tags a sync carries to origin, and which of the fork's tags follow a rebase.

Decided without I/O from facts the sync stage gathers: the version tags
upstream, origin and the clone have (names matching `[versions] core_tag`
and `package_tag` for the fork's packages), which upstream tags are on
upstream main's history, and which of the release branch's custom commits a
rebase would drop. Two kinds of work come out of it:

- push: upstream version tags on main's history that origin lacks, pushed in
  the same atomic push as the branches, so a fresh clone of origin has them;
- move: version tags on custom commits of the release branch, which a rebase
  rewrites; each tag follows its commit to the rebased copy (locally, and on
  origin with a lease on the old value when origin has it).

A tag that origin has on another commit, or a tagged commit the rebase
drops, stops the sync before anything changes: a tag is never silently
overwritten or left behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from tasks.core.sync import Commit, Push, Rebased, SyncError
from tasks.core.versions import versions_from_tags


@dataclass(frozen=True)
class TagRef:
    """A tag as one repository has it: what the ref points at (a tag object when annotated) and its commit."""

    name: str
    object: str
    commit: str

    @property
    def annotated(self) -> bool:
        return self.object != self.commit


def version_tags(names: Iterable[str], patterns: Iterable[tuple[str, str]]) -> set[str]:
    """The names that are version tags: `patterns` are (tag pattern, package name) pairs, as versions.tag_pattern gives."""
    listed = list(names)
    found: set[str] = set()
    for pattern, name in set(patterns):
        found.update(item.tag for item in versions_from_tags(listed, pattern, name))
    return found


def check_fetchable(local: dict[str, TagRef], upstream: dict[str, TagRef], origin: dict[str, TagRef], fork: str) -> None:
    """Fetching upstream's tags never overwrites a tag of the clone: one the clone has on something else
    (often a copy of origin's) stops the sync before the fetch, naming both commits and the ways out."""
    clashes = sorted(name for name, tag in local.items() if name in upstream and upstream[name].object != tag.object)
    if not clashes:
        return
    lines, ways = [], []
    for name in clashes:
        ours, theirs = local[name], upstream[name]
        on_origin = origin.get(name)
        origin_note = (f" (origin has it on commit {on_origin.commit[:10]} too)" if on_origin and on_origin.object == ours.object
                       else "")
        lines.append(f"  tag {name}: on commit {ours.commit[:10]} here{origin_note}, upstream has it on commit "
                     f"{theirs.commit[:10]}")
        replace_origin = (f" && git -C {fork} push --force-with-lease=refs/tags/{name}:{on_origin.object} origin "
                          f"refs/tags/{name}" if on_origin and on_origin.object != theirs.object else "")
        ways.append(f"    {name}: to take upstream's: git -C {fork} tag -d {name} && git -C {fork} fetch upstream "
                     f"refs/tags/{name}:refs/tags/{name}{replace_origin}; to keep yours under another name: "
                     f"git -C {fork} tag <new name> {ours.object} && git -C {fork} tag -d {name}")
    raise SyncError(
        f"{len(clashes)} tag(s) in the clone differ from upstream's, and fetching upstream's tags would overwrite "
        "them; nothing was fetched or changed\n" + "\n".join(lines),
        where=fork,
        fix="\n".join(["for each tag:", *ways, "    then run `doit sync` again (the sync never overwrites a tag)"]),
    )


@dataclass(frozen=True)
class TagFacts:
    """What the tag plan is decided from; every dict holds version tags only."""

    fork: str
    release: str
    upstream: dict[str, TagRef]
    origin: dict[str, TagRef]
    local: dict[str, TagRef]
    on_main: frozenset[str]  # commits of upstream's tags that are on upstream main's history
    custom: tuple[Commit, ...] = ()  # the release branch's custom commits, rebased when `rebase`
    absorbed: frozenset[str] = frozenset()  # custom commits whose change upstream has: a rebase drops them
    rebase: bool = False


@dataclass(frozen=True)
class TagMove:
    """A fork tag on a custom commit that the rebase rewrites."""

    name: str
    commit: str
    subject: str
    local: str | None  # the tag's object in the clone (None: only origin has it)
    origin: str | None  # the tag's object on origin (None: only the clone has it)


@dataclass(frozen=True)
class MovedTag:
    """A fork tag after the rebase: `new` is the rebased commit, `object` what the tag ref now points at."""

    name: str
    old: str
    new: str
    object: str
    origin: str | None

    def line(self) -> str:
        return f"{self.name}: {self.old[:10]} -> {self.new[:10]}"


@dataclass(frozen=True)
class TagPlan:
    push: tuple[TagRef, ...] = ()
    move: tuple[TagMove, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.push and not self.move

    def to_dict(self) -> dict[str, Any]:
        return {"push": [asdict(tag) for tag in self.push], "move": [asdict(move) for move in self.move]}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TagPlan:
        data = data or {}
        return cls(tuple(TagRef(**tag) for tag in data.get("push", [])),
                   tuple(TagMove(**move) for move in data.get("move", [])))


def plan_tags(facts: TagFacts) -> TagPlan:
    """The tags to push and to move, or SyncError naming every tag that cannot be carried safely."""
    moves, move_problems = plan_moves(facts)
    moving = {move.name for move in moves}
    pushes, push_problems = plan_new_tags(facts, moving)
    problems = push_problems + move_problems
    if problems:
        raise SyncError(
            f"{len(problems)} version tag(s) cannot be carried to origin safely; no branch or tag was moved "
            "and nothing was pushed\n" + "\n".join(what for what, _ in problems),
            where=f"{facts.fork} and origin",
            fix=fixes(problems, "(the sync never overwrites a tag)"),
        )
    return TagPlan(tuple(pushes), tuple(moves))


Problem = tuple[str, str]  # (what is wrong, how to fix it)


def fixes(problems: list[Problem], note: str = "") -> str:
    return "\n".join(["for each tag:", *(fix for _, fix in problems), f"    then run `doit sync` again {note}".rstrip()])


def plan_new_tags(facts: TagFacts, moving: set[str]) -> tuple[list[TagRef], list[Problem]]:
    """Upstream's version tags on main's history that origin lacks; one that origin has elsewhere is a problem."""
    pushes, problems = [], []
    for name in sorted(facts.upstream):
        tag = facts.upstream[name]
        if tag.commit not in facts.on_main or name in moving:
            continue
        theirs = facts.origin.get(name)
        if theirs is None:
            pushes.append(tag)
        elif theirs.commit != tag.commit:
            problems.append(origin_elsewhere(facts.fork, tag, theirs))
    return pushes, problems


def origin_elsewhere(fork: str, ours: TagRef, theirs: TagRef) -> Problem:
    name = ours.name
    return (
        f"  tag {name}: upstream has it on commit {ours.commit[:10]}, origin on commit {theirs.commit[:10]}",
        f"    {name}: if origin's tag is wrong, replace it with upstream's: "
        f"git -C {fork} push --force-with-lease=refs/tags/{name}:{theirs.object} origin refs/tags/{name}; "
        f"if it is the fork's own, keep it under another name and remove it first: "
        f"git -C {fork} fetch origin refs/tags/{name}:refs/tags/<new name> && git -C {fork} push origin "
        f"refs/tags/<new name> && git -C {fork} push --force-with-lease=refs/tags/{name}:{theirs.object} "
        f"origin :refs/tags/{name}",
    )


def plan_moves(facts: TagFacts) -> tuple[list[TagMove], list[Problem]]:
    """Version tags on custom commits, when the rebase rewrites them; dropped or disagreeing ones are problems."""
    if not facts.rebase or not facts.custom:
        return [], []
    custom = {commit.sha: commit for commit in facts.custom}
    moves, problems = [], []
    for name in sorted({*facts.local, *facts.origin}):
        local, origin = facts.local.get(name), facts.origin.get(name)
        if not any(tag and tag.commit in custom for tag in (local, origin)):
            continue
        if local and origin and local.commit != origin.commit:
            problems.append(disagreeing(facts.fork, local, origin))
            continue
        tag = local or origin
        assert tag is not None
        commit = custom[tag.commit]
        if commit.sha in facts.absorbed:
            problems.append(dropped(facts.fork, name, commit, origin.object if origin else None, facts.release,
                                    "upstream already has its change, so the rebase drops it"))
            continue
        moves.append(TagMove(name, commit.sha, commit.subject, local.object if local else None,
                             origin.object if origin else None))
    return moves, problems


def disagreeing(fork: str, local: TagRef, origin: TagRef) -> Problem:
    name = local.name
    return (
        f"  tag {name}: on commit {local.commit[:10]} in the clone but on commit {origin.commit[:10]} on origin",
        f"    {name}: decide which is right; origin's: git -C {fork} tag -f {name} {origin.object}; "
        f"the clone's: git -C {fork} push --force-with-lease=refs/tags/{name}:{origin.object} origin refs/tags/{name}",
    )


def dropped(fork: str, name: str, commit: Commit, origin: str | None, release: str, why: str) -> Problem:
    """`origin`: the tag's object on origin, None when origin does not have it."""
    lease = f"--force-with-lease=refs/tags/{name}:{origin}"
    delete_origin = f" && git -C {fork} push {lease} origin :refs/tags/{name}" if origin else ""
    retag_origin = f" && git -C {fork} push {lease} origin refs/tags/{name}" if origin else ""
    return (
        f"  tag {name}: on the {release!r} commit {commit.line()}; {why}, and the tag would be left behind",
        f"    {name}: move it by hand to the commit that carries that change now "
        f"(git -C {fork} tag -f {name} <commit>{retag_origin}), or delete it "
        f"(git -C {fork} tag -d {name}{delete_origin})",
    )


def place_moves(moves: Iterable[TagMove], pairs: list[Rebased], fork: str, release: str) -> list[tuple[TagMove, str]]:
    """Each planned move with the commit its tag goes to (pair_rebased's pairs); a commit git dropped stops it."""
    new_of = {pair.old: pair.new for pair in pairs}
    placed, problems = [], []
    for move in moves:
        new = new_of.get(move.commit)
        if new is None:
            problems.append(dropped(fork, move.name, Commit(move.commit, move.subject), move.origin,
                                    release, "the rebase left no commit that matches it"))
            continue
        placed.append((move, new))
    if problems:
        raise SyncError(
            "the rebase would leave version tag(s) behind, so it was not applied: "
            f"{release!r} and every tag are unchanged\n" + "\n".join(what for what, _ in problems),
            where=fork,
            fix=fixes(problems),
        )
    return placed


def tag_pushes(plan: TagPlan, moved: Iterable[MovedTag]) -> list[Push]:
    """New tags pushed as they are (origin must not have them); moved tags with a lease on origin's old value."""
    pushes = [Push(tag.name, None, tag.object, kind="tags") for tag in plan.push]
    pushes += [Push(tag.name, tag.origin, tag.object, lease=tag.origin, kind="tags") for tag in moved if tag.origin]
    return pushes


SHOWN_TAGS = 10  # a first sync of a real fork pushes about a thousand of Prefect's tags


def tag_lines(plan: TagPlan, *, would: bool) -> list[str]:
    """The tag work in words, for the console and the report's plan."""
    lines = []
    if plan.push:
        shown = [tag.name for tag in plan.push[:SHOWN_TAGS]]
        names = ", ".join(shown) + (f" and {len(plan.push) - len(shown)} more" if len(plan.push) > len(shown) else "")
        lines.append(f"{'would push' if would else 'push'} {len(plan.push)} tag(s) to origin: {names}")
    for move in plan.move:
        where = "here and on origin" if move.local and move.origin else ("on origin" if move.origin else "here")
        lines.append(f"{'would move' if would else 'move'} tag {move.name} ({where}) from {move.commit[:10]} "
                     f"{move.subject} to its rebased commit")
    return lines


def moved_tag_object(tag_text: str, new_commit: str) -> str:
    """An annotated tag's text (`git cat-file tag`) pointing at `new_commit`: same name, tagger and message.

    A signature would no longer match, so it is left out.
    """
    header, _, message = tag_text.partition("\n\n")
    lines = [f"object {new_commit}" if line.startswith("object ") else line for line in header.splitlines()]
    signature = message.find("-----BEGIN ")
    if signature >= 0:
        message = message[:signature]
    return "\n".join(lines) + "\n\n" + message
