"""The writes of a deploy plan against one Prefect server: flows, deployments, their automations.

The writes are one pipeline, not phases: each deployment's worker makes its
flow when no other worker has (a flow is written once, whichever deployment
needs it first), then writes the deployment at once. The server is never left
waiting for a phase to drain, and the first deployment is written as soon as
its flow exists. Create bodies carry only what differs from the server's own
defaults where sending the default costs the server work (see `lean_body`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tasks.adapters.console import say, warn
from tasks.adapters.prefect import PrefectApi
from tasks.core.deployment import Desired
from tasks.core.deployplan import Change, automation_body, create_body, triggers_hash, version_info
from tasks.core.errors import ForkflowError
from tasks.core.text import shown
from tasks.stages.deploy.report import result_entry

# Keys of a create body that a new deployment gets from the server anyway when they are null; sent as null, the
# server still loads the new deployment to compare its concurrency limit (a query per create for no change).
NULL_BY_DEFAULT = ("concurrency_limit", "concurrency_options")


class Applier:
    """Runs the writes of a plan, `concurrency` at a time; one failure does not stop the others."""

    def __init__(self, api: PrefectApi, concurrency: int, labels: dict[str, str] | None = None):
        self.labels = labels or {}
        self.api = api
        self.concurrency = concurrency
        self.flow_ids: dict[str, str | None] = {}
        self.flow_locks: dict[str, threading.Lock] = {}
        self.lock = threading.Lock()

    def run(self, changes: list[Change]) -> list[dict[str, Any]]:
        needed = sorted({c.desired.flow for c in changes if c.kind == "create" and c.desired})
        self.flow_ids.update(self.api.flow_ids(needed) if needed else {})
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self.apply_one, changes))

    def flow_id_of(self, name: str) -> str | None:
        """The flow's id, creating the flow the first time a deployment asks for it (others of it wait for that)."""
        with self.lock:
            guard = self.flow_locks.setdefault(name, threading.Lock())
        with guard:
            if name not in self.flow_ids:
                self.flow_ids[name] = self.flow_id(name)
            return self.flow_ids[name]

    def flow_id(self, name: str) -> str | None:
        try:
            return self.api.ensure_flow(name)
        except ForkflowError as err:
            warn(str(err))
            return None

    def apply_one(self, change: Change) -> dict[str, Any]:
        result = result_entry(change, self.api.dry_run)
        try:
            result["id"] = self.write(change)
        except ForkflowError as err:
            result.update(status="failed", error=err.what)
        if not self.api.dry_run and change.kind != "unchanged":
            with self.lock:
                diff = f" ({', '.join(change.diff)})" if change.kind == "update" else ""
                say(f"{result['status']:<9} {shown(change.name)}{diff}")
        return result

    def write(self, change: Change) -> str | None:
        if change.kind == "unchanged":
            return change.deployment_id
        if change.kind == "prune":
            assert change.deployment_id is not None
            self.drop_automations(change.deployment_id)
            self.api.delete_deployment(change.deployment_id, change.name)
            return change.deployment_id
        assert change.desired is not None
        if change.kind == "update":
            assert change.deployment_id is not None
            if change.patch:
                self.api.update_deployment(change.deployment_id, change.name, {**change.patch, **version_info(change.desired)})
            if change.triggers_changed:
                self.replace_automations(change.deployment_id, change.desired)
            return change.deployment_id
        return self.create(change)

    def create(self, change: Change) -> str | None:
        assert change.desired is not None
        flow_id = self.flow_id_of(change.desired.flow)
        if flow_id is None and not self.api.dry_run:
            raise ForkflowError(f"could not create flow {change.desired.flow!r}")
        if change.deployment_id:
            self.drop_automations(change.deployment_id)
            self.api.delete_deployment(change.deployment_id, change.name)
        created = self.api.create_deployment(lean_body({**create_body(change.desired, flow_id), "labels": self.labels}))
        if created is None:
            return None
        if change.desired.spec.get("triggers"):
            self.replace_automations(created["id"], change.desired, fresh=True)
        return str(created["id"])

    def replace_automations(self, deployment_id: str, desired: Desired, fresh: bool = False) -> None:
        """As `prefect deploy` does: the deployment's own automations go (a new one has none), one per trigger is made."""
        if not fresh:
            self.drop_automations(deployment_id)
        triggers = desired.spec.get("triggers") or []
        digest = triggers_hash(triggers)
        named = prefect_trigger_names(desired.name, triggers) if desired.native else triggers
        for index, automation in enumerate(trigger_automations(deployment_id, named)):
            self.api.create_automation(automation_body(deployment_id, desired.name, index, automation, digest))

    def drop_automations(self, deployment_id: str) -> None:
        self.api.delete_owned_automations(deployment_id)


def lean_body(body: dict[str, Any]) -> dict[str, Any]:
    """A create body without the null keys a new deployment has anyway (NULL_BY_DEFAULT). Only for a deployment
    that is not on the server (a create, after deleting any it replaces): the server stores the same deployment."""
    return {key: value for key, value in body.items() if not (key in NULL_BY_DEFAULT and value is None)}


def prefect_trigger_names(deployment: str, triggers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`prefect deploy` names an unnamed trigger `<deployment>__automation_<n>`, counting from 1."""
    return [{"name": f"{deployment}__automation_{index}", **trigger} for index, trigger in enumerate(triggers, start=1)]


def trigger_automations(deployment_id: str, triggers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prefect's own conversion of deployment triggers into automations that run the deployment."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    adapter: Any = TypeAdapter(DeploymentTriggerTypes)
    bodies = []
    for trigger in triggers:
        model = adapter.validate_python(trigger)
        model.set_deployment_id(deployment_id)
        bodies.append(model.as_automation().model_dump(mode="json"))
    return bodies
