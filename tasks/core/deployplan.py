"""Compare desired deployments with what the server has, and decide the writes.

The server's deployment is projected onto the fields forkflow manages and
normalised the way the API stores them; the desired spec and that projection
are hashed, and equal hashes mean no write. Anything changed or deleted on
the server therefore shows up as a difference and is restored.

State people set by hand is kept: a deployment's `paused` flag is managed
only when the config says `paused`, and a schedule someone switched off stays
off unless the config says `paused` explicitly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tasks.core.deployment import Desired

FORKFLOW_TAG = "forkflow"
TRIGGER_TAG_PREFIX = "forkflow-triggers="
OWNER_TAG_PREFIX = "forkflow-deployment="
MADE_ELSEWHERE = "made-elsewhere"  # an automation a deployment owns that forkflow did not make (`prefect deploy`'s)

UPDATABLE = ("entrypoint", "description", "version", "parameters", "parameter_openapi_schema",
             "enforce_parameter_schema", "tags", "work_pool_name", "work_queue_name", "job_variables",
             "pull_steps", "schedules", "concurrency_limit", "concurrency_options", "paused")


@dataclass(frozen=True)
class Change:
    """What to do about one deployment: create, update, unchanged, or prune."""

    kind: str
    name: str
    desired: Desired | None = None
    deployment_id: str | None = None
    diff: tuple[str, ...] = ()
    patch: dict[str, Any] = field(default_factory=dict)
    triggers_changed: bool = False
    spec_hash: str = ""
    flow: str | None = None


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(comparable(spec)).encode()).hexdigest()[:16]


def comparable(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec in a form where order that does not matter (tags, schedules) is sorted away."""
    result = {key: value for key, value in spec.items() if key != "triggers"}
    if "tags" in result:
        result["tags"] = sorted(result["tags"])
    if "schedules" in result:
        result["schedules"] = sorted(result["schedules"], key=canonical)
    if "concurrency_options" in result and result["concurrency_options"]:
        result["concurrency_options"] = {k: v for k, v in result["concurrency_options"].items() if v is not None}
    triggers = spec.get("triggers") or []
    result["triggers"] = triggers if isinstance(triggers, str) else triggers_summary(triggers)
    return result


def triggers_hash(triggers: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical(triggers).encode()).hexdigest()[:16]


def triggers_summary(triggers: list[dict[str, Any]]) -> str:
    """`<hash>x<count>` of the configured triggers, '' for none."""
    return f"{triggers_hash(triggers)}x{len(triggers)}" if triggers else ""


def observed(server: dict[str, Any], desired: dict[str, Any], flow_name: str | None,
             trigger_tags: list[str]) -> dict[str, Any]:
    """The server's deployment projected onto the managed fields of `desired`."""
    keep_anchor = {canonical(s["schedule"].get("interval")) for s in desired.get("schedules", [])
                   if "anchor_date" in s["schedule"]}
    limit = (server.get("global_concurrency_limit") or {}).get("limit", server.get("concurrency_limit"))
    seen: dict[str, Any] = {
        "flow_name": flow_name,
        "concurrency_limit": limit,
        "schedules": [observed_schedule(s, keep_anchor) for s in server.get("schedules") or []],
        "triggers": server_triggers(trigger_tags),
    }
    for key in desired:
        if key not in seen:
            seen[key] = server.get(key)
    return seen


def observed_schedule(item: dict[str, Any], keep_anchor: set[str]) -> dict[str, Any]:
    body = dict(item.get("schedule") or {})
    if "interval" in body:
        body["interval"] = float(body["interval"])
        if canonical(body["interval"]) not in keep_anchor:
            body.pop("anchor_date", None)
    return {"schedule": body, "active": bool(item.get("active", True)),
            "parameters": item.get("parameters") or {}, "slug": item.get("slug")}


def server_triggers(tags: list[str]) -> str:
    """The same summary for the automations a deployment owns (one hash tag each when forkflow made them)."""
    digests = {tag.removeprefix(TRIGGER_TAG_PREFIX) for tag in tags}
    if not digests:
        return ""
    if MADE_ELSEWHERE in digests:
        return MADE_ELSEWHERE
    return f"{digests.pop()}x{len(tags)}" if len(digests) == 1 else "mixed"


def owned_by_deployment(automations: list[dict[str, Any]], not_owned: set[str]) -> dict[str, list[str]]:
    """deployment id -> one entry per automation it may own: forkflow's trigger hash tag, or MADE_ELSEWHERE.

    The API does not say which automations a deployment owns. Forkflow's carry its tags. An untagged one that
    runs the deployment may be `prefect deploy`'s (owned: `prefect deploy` of a file without those triggers
    deletes it) or a person's (kept); `not_owned` lists the ids that survived deleting the owned ones once.
    """
    owned: dict[str, list[str]] = {}
    for automation in automations:
        tags = automation.get("tags") or []
        owner = next((t.removeprefix(OWNER_TAG_PREFIX) for t in tags if t.startswith(OWNER_TAG_PREFIX)), "")
        digest = next((t for t in tags if t.startswith(TRIGGER_TAG_PREFIX)), "")
        if owner and digest:
            owned.setdefault(owner, []).append(digest)
        elif str(automation.get("id")) not in not_owned:
            for deployment_id in deployments_run_by(automation):
                owned.setdefault(deployment_id, []).append(MADE_ELSEWHERE)
    return owned


def deployments_run_by(automation: dict[str, Any]) -> set[str]:
    """The deployments an automation runs by id (what an automation made from a deployment's trigger does)."""
    return {str(action["deployment_id"]) for action in automation.get("actions") or []
            if action.get("type") == "run-deployment" and action.get("source") == "selected"
            and action.get("deployment_id")}


def survivors(automations: list[dict[str, Any]], replaced: set[str]) -> list[str]:
    """Ids of untagged automations that still run a deployment whose owned automations were just deleted."""
    return sorted(str(a["id"]) for a in automations
                  if not any(t.startswith(TRIGGER_TAG_PREFIX) for t in a.get("tags") or [])
                  and deployments_run_by(a) & replaced)


def keep_people_paused(desired: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """Unless the config says `paused`, a schedule switched off on the server stays off."""
    if "paused" in desired:
        return desired
    switched_off = {canonical(s["schedule"]) for s in seen.get("schedules", []) if not s["active"]}
    schedules = [{**s, "active": False} if s["active"] and canonical(s["schedule"]) in switched_off else s
                 for s in desired.get("schedules", [])]
    return {**desired, "schedules": schedules}


def compare(desired: Desired, server: dict[str, Any] | None, flow_name: str | None,
            trigger_tags: list[str]) -> Change:
    """Create when missing, update the fields that differ, or nothing when the hashes agree."""
    if server is None:
        return Change("create", desired.name, desired, diff=("created",), spec_hash=spec_hash(desired.spec),
                      triggers_changed=bool(desired.spec.get("triggers")))
    seen = observed(server, desired.spec, flow_name, trigger_tags)
    wanted = keep_people_paused(desired.spec, seen)
    want, have = comparable(wanted), comparable(seen)
    wanted_hash = spec_hash(wanted)
    if flow_name != desired.flow:
        return Change("create", desired.name, desired, server["id"], diff=("flow",), spec_hash=wanted_hash,
                      triggers_changed=bool(desired.spec.get("triggers")))
    diff = tuple(sorted(key for key in want if want[key] != have.get(key)))
    if not diff:
        return Change("unchanged", desired.name, desired, server["id"], spec_hash=wanted_hash)
    patch = {key: wanted.get(key) for key in diff if key in UPDATABLE}
    if "concurrency_limit" in patch or "concurrency_options" in patch:
        patch["concurrency_limit"] = wanted.get("concurrency_limit")
        patch["concurrency_options"] = wanted.get("concurrency_options")
    return Change("update", desired.name, dataclasses.replace(desired, spec=wanted),
                  server["id"], diff, patch, "triggers" in diff, wanted_hash)


def create_body(desired: Desired, flow_id: str | None) -> dict[str, Any]:
    """The POST /deployments/ body for a desired deployment."""
    body = {key: desired.spec.get(key) for key in UPDATABLE if key in desired.spec}
    body.update({"name": desired.name, "flow_id": flow_id, **version_info(desired)})
    body.setdefault("paused", False)
    return body


def version_info(desired: Desired) -> dict[str, Any]:
    """`version_info` as prefect deploy sends it with a prefect.yaml deployment (the server keeps it in Prefect
    Cloud; it is not compared, since a self-hosted server does not keep it)."""
    info = desired.runtime.get("version_info")
    return {"version_info": {**info, "version": desired.spec.get("version") or ""}} if info else {}


def prune_changes(server: dict[str, dict[str, Any]], keep: set[str], may_prune: Any) -> list[Change]:
    """Deployments (by flow/name) that `may_prune` accepts but the config no longer defines."""
    return [Change("prune", item["name"], None, item["id"], ("pruned",), flow=identity.split("/", 1)[0])
            for identity, item in sorted(server.items())
            if identity not in keep and may_prune(item)]


def automation_body(deployment_id: str, name: str, index: int, automation: dict[str, Any], digest: str) -> dict[str, Any]:
    """An automation made from a trigger, tagged so the next run can tell it is current."""
    body = dict(automation)
    body["name"] = body.get("name") if body.get("name") and "Automation for deployment" not in body["name"] \
        else f"{name}__trigger_{index}"
    body["tags"] = sorted({*body.get("tags", []), FORKFLOW_TAG, TRIGGER_TAG_PREFIX + digest, OWNER_TAG_PREFIX + deployment_id})
    body["owner_resource"] = f"prefect.deployment.{deployment_id}"
    return body


def record_usable(record: dict[str, Any] | None, signals: dict[str, Any], now: float, verify_after: float) -> bool:
    """Whether the last run's record can stand in for reading every deployment.

    It can when a full read happened less than `verify_after` seconds ago and,
    for every name prefix, the server still has as many deployments and the same
    latest `updated` time as right after that run: a deployment deleted, added,
    edited or paused since then changes one of the two.
    """
    return record is not None and record_recent(record, now, verify_after) and bool(record.get("signals") == signals)


def record_recent(record: dict[str, Any] | None, now: float, verify_after: float) -> bool:
    """Whether the record's last full read happened less than `verify_after` seconds ago."""
    return bool(record) and verify_after > 0 and now - float((record or {}).get("checked", 0)) <= verify_after


def edited_prefixes(record: dict[str, Any], signals: dict[str, Any]) -> dict[str, str] | None:
    """Name prefix -> the record's latest `updated`, for the prefixes whose deployments were only edited since the
    record (as many as then, a later latest `updated`); None when one may have gained or lost a deployment (or the
    record cannot tell): then only a full read tells."""
    recorded = record.get("signals") or {}
    edited: dict[str, str] = {}
    for prefix, now in signals.items():
        then = recorded.get(prefix)
        if not isinstance(then, dict) or then.get("count") != now.get("count"):
            return None
        if then.get("latest") != now.get("latest"):
            if not then.get("latest"):
                return None
            edited[prefix] = str(then["latest"])
    return edited


def edits_known(record: dict[str, Any], items: list[dict[str, Any]]) -> set[str] | None:
    """The ids of the deployments edited since the record, when every one is a deployment the record holds; None when
    one is not (made since: with the same count, another may be gone, which only a full read tells)."""
    ids = {entry.get("id") for entry in (record.get("deployments") or {}).values()}
    found = {str(item["id"]) for item in items}
    return found if found <= ids else None


def spec_hashes(ready: list[Desired]) -> dict[str, str]:
    """Each deployment's spec hash by identity, made once per run (the plan and the record both use them)."""
    return {desired.identity: spec_hash(desired.spec) for desired in ready}


def split_known(ready: list[Desired], record: dict[str, Any], owned: dict[str, list[str]],
                digests: dict[str, str]) -> tuple[list[Change], list[Desired]]:
    """Deployments the record shows as applied with the same spec (unchanged) and the rest (to read and compare)."""
    known: list[Change] = []
    stale: list[Desired] = []
    entries = record.get("deployments", {})
    for desired in ready:
        entry = entries.get(desired.identity)
        digest = digests[desired.identity]
        if entry and entry.get("hash") == digest and \
                server_triggers(owned.get(entry["id"], [])) == triggers_summary(desired.spec.get("triggers") or []):
            known.append(Change("unchanged", desired.name, desired, entry["id"], spec_hash=digest))
        else:
            stale.append(desired)
    return known, stale


def remembered(record: dict[str, Any] | None, digests: dict[str, str], results: list[dict[str, Any]],
               signals: dict[str, Any], checked: float, not_owned: list[str]) -> dict[str, Any]:
    """The record after a run: the spec hash applied for each deployment that succeeded."""
    entries = dict((record or {}).get("deployments", {}))
    for result in results:
        identity = f"{result.get('flow')}/{result['name']}"
        if result["status"] in ("failed", "pruned", "skipped") or not result.get("id"):
            entries.pop(identity, None)
        elif identity in digests:
            entries[identity] = {"id": result["id"], "hash": digests[identity]}
    return {"checked": checked, "signals": signals, "deployments": entries, "not_owned": not_owned}
