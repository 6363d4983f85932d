"""The demo plan's commit signatures: what the demo (and a rebase of it) makes."""

from __future__ import annotations

from pathlib import Path

from tasks.core.demo import foreign_commits, parse_history

REPO = Path(__file__).resolve().parents[2]


def test_only_commits_the_demo_makes_are_its_own() -> None:
    plan = parse_history((REPO / "examples" / "demo" / "history.toml").read_text(), "history.toml")
    first = sorted(plan.signatures(), key=lambda s: s.time)[0]
    assert len(plan.signatures()) == len(plan.upstream) + len(plan.release)
    own = f"abc1234\0{first.author}\0{first.email}\0{first.time}\0{first.subject}"
    later = f"abc1235\0{first.author}\0{first.email}\0{first.time + 1}\0{first.subject}"
    other = f"abc1236\0Dana\0dana@example.com\0{first.time}\0{first.subject}"
    assert foreign_commits("\n".join([own, later, other]), plan.signatures()) == [
        f"abc1235 {first.subject} ({first.author})", f"abc1236 {first.subject} (Dana)"]
