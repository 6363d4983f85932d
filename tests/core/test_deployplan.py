"""The deploy planner's pure parts: which automations a deployment owns, and when its triggers differ."""

from __future__ import annotations

from tasks.core.deployplan import (
    MADE_ELSEWHERE,
    OWNER_TAG_PREFIX,
    TRIGGER_TAG_PREFIX,
    owned_by_deployment,
    server_triggers,
    survivors,
    triggers_summary,
)

TRIGGERS = [{"type": "event", "expect": ["erp.export.finished"]}]


def runs(deployment_id: str) -> list[dict[str, str]]:
    return [{"type": "run-deployment", "source": "selected", "deployment_id": deployment_id}]


def test_automations_are_grouped_by_the_deployment_they_run() -> None:
    ours = {"id": "a1", "tags": ["forkflow", OWNER_TAG_PREFIX + "d1", TRIGGER_TAG_PREFIX + "abc"], "actions": runs("d1")}
    theirs = {"id": "a2", "tags": [], "actions": runs("d2")}
    kept_before = {"id": "a3", "tags": [], "actions": runs("d3")}
    inferred = {"id": "a4", "tags": [], "actions": [{"type": "run-deployment", "source": "inferred"}]}
    notify = {"id": "a5", "tags": [], "actions": [{"type": "send-notification"}]}
    assert owned_by_deployment([ours, theirs, kept_before, inferred, notify], {"a3"}) == {
        "d1": [TRIGGER_TAG_PREFIX + "abc"], "d2": [MADE_ELSEWHERE]}


def test_what_survives_deleting_a_deployments_owned_automations_is_not_owned() -> None:
    ours = {"id": "a1", "tags": [TRIGGER_TAG_PREFIX + "abc"], "actions": runs("d1")}
    persons = {"id": "a2", "tags": ["mine"], "actions": runs("d1")}
    elsewhere = {"id": "a3", "tags": [], "actions": runs("d9")}
    assert survivors([ours, persons, elsewhere], {"d1"}) == ["a2"]


def test_automations_made_elsewhere_never_match_the_configured_triggers() -> None:
    assert server_triggers([MADE_ELSEWHERE]) != triggers_summary([]), "no triggers in the file: theirs must go"
    assert server_triggers([MADE_ELSEWHERE]) != triggers_summary(TRIGGERS)
    digest = triggers_summary(TRIGGERS).split("x")[0]
    assert server_triggers([TRIGGER_TAG_PREFIX + digest]) == triggers_summary(TRIGGERS)
    assert server_triggers([TRIGGER_TAG_PREFIX + digest, MADE_ELSEWHERE]) != triggers_summary(TRIGGERS)
    assert server_triggers([]) == triggers_summary([])


def test_only_edits_since_the_record_are_named_and_anything_else_asks_for_a_full_read() -> None:
    from tasks.core.deployplan import edited_prefixes, edits_known

    then = {"a-": {"count": 3, "latest": "2026-12-08T01:00:00Z"}, "b-": {"count": 1, "latest": "2026-12-08T00:00:00Z"}}
    record = {"signals": then, "deployments": {"f/x": {"id": "1", "hash": "h"}, "f/y": {"id": "2", "hash": "h"}}}
    assert edited_prefixes(record, then) == {}
    edited = {**then, "a-": {"count": 3, "latest": "2026-12-08T02:00:00Z"}}
    assert edited_prefixes(record, edited) == {"a-": "2026-12-08T01:00:00Z"}
    assert edited_prefixes(record, {**then, "a-": {"count": 4, "latest": "2026-12-08T02:00:00Z"}}) is None
    assert edited_prefixes(record, {**then, "c-": {"count": 0, "latest": None}}) is None  # a prefix it never saw
    assert edited_prefixes({"signals": {**then, "a-": {"count": 3, "latest": None}}, "deployments": {}}, edited) is None
    assert edits_known(record, [{"id": "2"}]) == {"2"} and edits_known(record, []) == set()
    assert edits_known(record, [{"id": "2"}, {"id": "9"}]) is None
