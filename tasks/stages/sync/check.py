"""Whether sync:fetch has anything to do, answered by asking the remotes, not by fetching.

When a fetch finds nothing moved (upstream's main and tags, origin's main and
release, and the clone all where the last successful sync left them), it
records what it saw: the remotes' refs (ls-remote, tags included), the clone's
branches, remote-tracking refs and tags, its working tree status, remotes and
HEAD, and the [fork] config. The next run looks at the same things, all at
once and without fetching (the two ls-remote calls can be sent as the run
starts, see tasks.pipeline.prefetch); when every part is the same, the fetch would fetch
nothing and plan nothing, and sync:fetch is up to date. Any difference, or a
remote that does not answer, runs the fetch, which then says what it found.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from tasks.adapters.git import Git, Layout
from tasks.core.errors import ForkflowError
from tasks.pipeline import prefetch
from tasks.pipeline.checks import Stale
from tasks.pipeline.parallel import together
from tasks.pipeline.settings import read_json, read_report, write_json

if TYPE_CHECKING:
    from tasks.stages.sync.setup import SyncSetup

RECORD = "fetched.json"
UPSTREAM = "upstream"  # the remotes' names in the clone (tasks.stages.sync.stage uses these)
ORIGIN = "origin"


@dataclass(frozen=True)
class Sight:
    """The remotes and the clone as one look shows them."""

    config: str
    upstream: dict[str, str]  # full ref -> sha on upstream: its main branch and every tag
    origin: dict[str, str]  # branch -> sha on origin: main and release (those it has)
    local: dict[str, str]  # full ref -> sha in the clone: branches, remote-tracking refs, tags
    clone: dict[str, Any]  # work tree, HEAD, unfinished operation, uncommitted changes, remotes
    origin_tags: dict[str, str] = field(default_factory=dict)  # full ref -> sha: origin's tags (the sync pushes some)

    def parts(self) -> dict[str, Any]:
        """What the record keeps: digests of the long ref lists, the rest as it is."""
        return {"config": digest(self.config), "upstream": digest(self.upstream), "origin": self.origin,
                "origin_tags": digest(self.origin_tags), "local": digest(self.local), "clone": self.clone}


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def local_patterns(setup: SyncSetup) -> list[str]:
    return [f"refs/heads/{setup.main}", f"refs/heads/{setup.release}", f"refs/remotes/{UPSTREAM}/{setup.upstream_main}",
            f"refs/remotes/{ORIGIN}/{setup.main}", f"refs/remotes/{ORIGIN}/{setup.release}", "refs/tags/"]


def look(setup: SyncSetup) -> Sight:
    """Both remotes and the clone, read at the same time (nothing is fetched or changed)."""
    setup.state_dir.mkdir(parents=True, exist_ok=True)
    probe, git = Git(setup.state_dir), Git(setup.fork)
    upstream, origin, layout, changes, remotes, local = (outcome.get() for outcome in together(
        partial(probe.remote_refs, setup.upstream_url, f"refs/heads/{setup.upstream_main}", "refs/tags/*"),
        partial(probe.remote_refs, setup.origin_url, f"refs/heads/{setup.main}", f"refs/heads/{setup.release}",
                "refs/tags/*"),
        git.layout, git.changes, git.remote_urls, partial(git.refs, *local_patterns(setup))))
    branches = {ref.removeprefix("refs/heads/"): sha for ref, sha in origin.items()
                if ref in (f"refs/heads/{setup.main}", f"refs/heads/{setup.release}")}
    tags = {ref: sha for ref, sha in origin.items() if ref.startswith("refs/tags/")}
    return Sight(setup.fingerprint, upstream, branches, local, clone_part(layout, changes, remotes), tags)


def clone_part(layout: Layout | None, changes: list[str], remotes: dict[str, str]) -> dict[str, Any]:
    if layout is None:
        return {"layout": None}
    return {"toplevel": str(layout.toplevel), "shallow": layout.shallow, "branch": layout.branch, "head": layout.head,
            "operation": Git.operation_in_progress(layout.git_dir), "changes": digest(changes), "remotes": remotes}


def settled(setup: SyncSetup, sight: Sight) -> bool:
    """The clone already has everything the remotes show: a fetch would move no ref."""
    tracking = {f"refs/remotes/{UPSTREAM}/{setup.upstream_main}": sight.upstream.get(f"refs/heads/{setup.upstream_main}"),
                **{f"refs/remotes/{ORIGIN}/{name}": sha for name, sha in sight.origin.items()}}
    tags = {ref: sha for ref, sha in sight.upstream.items() if ref.startswith("refs/tags/")}
    return all(sight.local.get(ref) == sha for ref, sha in {**tracking, **tags}.items())


def remember(setup: SyncSetup) -> None:
    """After a fetch that found nothing moved: look once more and record it, if nothing moved meanwhile."""
    try:
        sight = look(setup)
    except (ForkflowError, OSError):  # a remote stopped answering since the fetch: the next run fetches again
        return
    if settled(setup, sight) and not sight.clone.get("operation"):
        write_json(setup.state_dir / RECORD, sight.parts())


def forget(setup: SyncSetup) -> None:
    (setup.state_dir / RECORD).unlink(missing_ok=True)


def fetch_key(setup: SyncSetup) -> str:
    return f"sync-look:{setup.fork}:{setup.upstream_url}:{setup.origin_url}"


def ask_early(setup: SyncSetup) -> None:
    """Send the look as the run starts, when there is a record to compare it with."""
    if (setup.state_dir / RECORD).is_file() and (setup.fork / ".git").exists():
        prefetch.send(fetch_key(setup), partial(look, setup))


def missing_state(setup: SyncSetup) -> str | None:
    """The plan the later sync tasks follow, or the report a successful sync leaves, when it does not read: fetching
    again makes both (a corrupt one is set aside by read_json)."""
    if read_json(setup.state_dir / "run.json") is None:
        return "the sync plan (sync/run.json)"
    if read_report("sync", setup.settings) is None:
        return "reports/sync.json"
    return None


def nothing_to_fetch(setup: SyncSetup, *_: Any) -> bool | Stale:
    """sync:fetch's doit `uptodate` check."""
    if setup.dry_run:
        return Stale("dry run")
    saved = read_json(setup.state_dir / RECORD)
    if not saved:
        return Stale("no fetch since the last change found everything in place")
    missing = missing_state(setup)
    if missing:
        return Stale(f"{missing} is missing or unreadable")
    if not (setup.fork / ".git").exists():
        return Stale("no clone yet")
    try:
        now = prefetch.answer(fetch_key(setup), partial(look, setup)).parts()
    except (ForkflowError, OSError) as err:  # the fetch itself reports a remote that does not answer, with git's words
        return Stale(f"cannot tell without fetching: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
    moved = [REASONS[part] for part in REASONS if saved.get(part) != now[part]]
    return Stale("; ".join(moved)) if moved else True


REASONS = {
    "config": "the [fork] config changed",
    "upstream": "upstream's main or tags moved",
    "origin": "origin's branches moved",
    "origin_tags": "origin's tags changed",
    "local": "the clone's branches or tags changed",
    "clone": "the clone's work tree, HEAD or remotes changed",
}
