"""Whether `doit deploy` has anything to do, answered without loading the deploy machinery.

After a complete deploy (every deployment of the branch, not a dry run),
the run records a digest of everything the deployments are made from (flows.json,
the deployment config, pipeline.toml, image.json, the environment variables
the config and the connections read, forkflow's own deploy code) and, per
server, the signals of the deployments it manages: how many there are and
the latest `updated` time per name prefix, and forkflow's automations. The
next `doit deploy` is up to date when the digest is the same, the last full
read of the servers is younger than `[flows] verify_after`, and every server
still answers the same signals: asked once per server, concurrently, with a
short timeout (no answer means "not up to date", and the deploy runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from tasks.adapters.prefect_settings import Connection
from tasks.pipeline import prefetch
from tasks.pipeline.actions import is_dry_run
from tasks.pipeline.checks import Stale
from tasks.pipeline.deploy_files import input_files
from tasks.pipeline.settings import Settings, read_json, settings, write_json

RECORD = "deploy-unchanged.json"
TIMEOUT = 5.0
CODE = ("stages/deploy/stage.py", "stages/deploy/apply.py", "stages/deploy/desired.py", "pipeline/deployments.py",
        "core/deployspec.py", "core/deploynames.py", "core/schedules.py", "core/runtime.py", "core/deploydefs.py",
        "core/deployplan.py", "core/prefect_yaml.py", "core/prefect_templates.py", "core/deployment.py",
        "core/prefect_schedules.py", "core/acme.py", "core/discovery.py", "adapters/prefect.py",
        "adapters/prefect_settings.py", "pipeline/prefect_rules.py", "pipeline/version_info.py",
        "pipeline/docker_steps.py", "core/docker_steps.py",
        "pipeline/flow_code.py", "adapters/flow_code.py", "adapters/flow_child.py")
VARIABLES = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_PROFILE", "PREFECT_HOME",
             "PREFECT_PROFILES_PATH", "PREFECT_API_SSL_CERT_FILE", "FORKFLOW_ENVIRONMENT", "FORKFLOW_BRANCH",
             "PREFECT_DEFAULT_WORK_POOL_NAME", "PREFECT_DEPLOYMENTS_DEFAULT_WORK_POOL_NAME",
             "PREFECT_CLIENT_CUSTOM_HEADERS", "GITHUB_SHA", "CI_COMMIT_SHA", "BITBUCKET_COMMIT", "BUILD_SOURCEVERSION")
SETTINGS_FILES = ("prefect.toml", ".env", "pyproject.toml")  # where Prefect reads settings in the flows folder


def deploy_unchanged(task: Any = None, *_: Any) -> bool | Stale:
    """doit's uptodate check of `deploy`."""
    options = getattr(task, "options", None) or {}
    asked = [key for key in ("dry_run", "prune", "validate_only") if options.get(key)]
    if asked or is_dry_run():
        return Stale(f"asked for {', '.join(asked) or 'dry_run'}")
    current = settings()
    saved = read_json(current.state_dir / RECORD)
    if not saved:
        return Stale("no complete deploy recorded yet")
    if saved.get("inputs") != inputs_digest(current):
        return Stale("flows.json, the deployment config, pipeline.toml or image.json changed")
    assert current.config.flows is not None
    age = time.time() - float(saved.get("checked", 0))
    if age > current.config.flows.verify_after:
        return Stale(f"last full read of the servers {age:.0f}s ago (verify_after = {current.config.flows.verify_after})")
    servers = saved.get("servers", [])
    answers = [prefetch.answer(signals_key(server), partial(saved_signals, current, server)) for server in servers]
    drift = [line for answer, server in zip(answers, servers, strict=True) for line in drift_of(server, answer)]
    return Stale("; ".join(drift)) if drift else True


def ask_signals_early(current: Settings) -> None:
    """Send each recorded server's signals question as the run starts (see tasks.pipeline.prefetch); with no
    server recorded (a first deploy), have Prefect read its settings meanwhile instead."""
    saved = read_json(current.state_dir / RECORD) if current.config.flows is not None else None
    servers = (saved or {}).get("servers")
    if current.config.flows is not None and not servers:
        from tasks.pipeline.credentials import read_prefect_settings

        prefetch.send("prefect-settings", partial(read_prefect_settings, current))
    for server in servers if isinstance(servers, list) else []:
        if isinstance(server, dict) and {"url", "environment", "prefixes"} <= server.keys():
            prefetch.send(signals_key(server), partial(saved_signals, current, server))


def signals_key(server: dict[str, Any]) -> str:
    return f"signals:{server['url']}:{server['environment']}:{','.join(server['prefixes'])}"


def saved_signals(current: Settings, server: dict[str, Any]) -> dict[str, Any] | None:
    """The signals a recorded server answers now (automations only when the last deploy left some)."""
    return signals_or_none(server["url"], server["prefixes"], connection_of(current, server),
                           automations=bool((server.get("signals") or {}).get("automations")))


def drift_of(server: dict[str, Any], answer: dict[str, Any] | None) -> list[str]:
    """What a server changed since the last deploy, in words."""
    url, saved = server["url"], server.get("signals") or {}
    if answer is None:
        return [f"{url} did not answer"]
    found = []
    for prefix in server["prefixes"]:
        was, now = saved.get(prefix) or {}, answer.get(prefix) or {}
        if was.get("count") != now.get("count"):
            found.append(f"server drift at {url}: {now.get('count')} deployments named {prefix}* (was {was.get('count')})")
        elif was != now:
            found.append(f"server drift at {url}: a deployment named {prefix}* was edited at {now.get('latest')}")
    if answer.get("automations") != saved.get("automations") and "automations" in saved:
        found.append(f"server drift at {url}: forkflow's automations changed")
    return found


def remember(current: Settings, servers: list[dict[str, Any]], checked: float) -> None:
    """After a complete deploy: the digest and each server's signals as they are now (as the run read them right
    after its writes, or asked now)."""
    for server in servers:
        server["signals"] = server.get("signals") or signals_or_none(server["url"], server["prefixes"],
                                                                     connection_of(current, server))
    write_json(current.state_dir / RECORD, {"inputs": inputs_digest(current), "checked": checked, "servers": servers})


def forget(current: Settings) -> None:
    (current.state_dir / RECORD).unlink(missing_ok=True)


def listing_digest(current: Settings) -> str:
    """sha256 of flows.json's bytes, from its report facts when they are for the file there (5 MB at 5,000
    deployments, read once when written rather than by every no-op); "" when there is none."""
    from tasks.pipeline.report_facts import content_digest, report_facts

    facts = report_facts("flows", current) or {}
    found = facts.get("sha256") or content_digest(current.reports_dir / "flows.json")  # no facts: a corrupt report
    return str(found or "")


def inputs_digest(current: Settings) -> str:
    digest = hashlib.sha256()
    digest.update(listing_digest(current).encode())
    config_file, *deploy_configs = input_files(current)  # the deployment configs flows.json was made from, if any
    config_text = ""
    configs: list[Path | None] = [*deploy_configs] or [None]
    for file in (*configs, config_file, current.reports_dir / "image.json"):
        data = file.read_bytes() if file is not None and file.is_file() else b"-"
        digest.update(hashlib.sha256(data).digest())
        if file is not None and file in deploy_configs:
            config_text += data.decode("utf-8", "replace")
    names = set(VARIABLES) | set(re.findall(r"\{\{\s*\$(\w+)\s*\}\}", config_text))
    for env in current.config.environments.values():
        names |= {name for name in (env.api_key_env, env.auth_string_env) if name}
    for name in sorted(names):
        digest.update(f"{name}={hashlib.sha256(os.environ.get(name, '').encode()).hexdigest()}\n".encode())
    from tasks.pipeline.credentials import prefect_folder

    folder = prefect_folder(current)
    for name in SETTINGS_FILES:
        digest.update(hashlib.sha256((folder / name).read_bytes() if (folder / name).is_file() else b"-").digest())
    code = Path(__file__).resolve().parents[2]  # tasks/
    for name in CODE:
        digest.update(hashlib.sha256((code / name).read_bytes()).digest())
    return digest.hexdigest()


def connection_of(current: Settings, server: dict[str, Any]) -> Connection:
    from tasks.pipeline.credentials import environment_connection

    connection: Connection = environment_connection(current, server["environment"])
    return connection


def signals_or_none(url: str, prefixes: list[str], connection: Connection,
                    automations: bool = True) -> dict[str, Any] | None:
    """Deployment count and latest `updated` per prefix, and forkflow's automations (not asked when the last
    deploy left none: they come only from triggers, which are part of the inputs); None when the server does
    not answer. The requests go out at once."""
    asks: dict[str, tuple[str, dict[str, Any]]] = {}
    if automations:
        asks["automations"] = ("automations/filter", AUTOMATIONS)
    for prefix in prefixes:
        asks[prefix] = ("deployments/paginate", signals_query(prefix))
    try:
        answers = dict(zip(asks, asked_together(url, list(asks.values()), connection), strict=True))
        found: dict[str, Any] = {prefix: signals_from(answers[prefix]) for prefix in prefixes}
        found["automations"] = automation_signals(answers.get("automations", []))
        return found
    except (OSError, ValueError, KeyError, TypeError):
        return None


def asked_together(url: str, asks: list[tuple[str, dict[str, Any]]], connection: Connection) -> list[Any]:
    """Each (path, body) posted, all at once (a single one in this thread)."""
    if len(asks) == 1:
        return [post(url, *asks[0], connection)]
    with ThreadPoolExecutor(max_workers=len(asks)) as pool:
        return list(pool.map(lambda ask: post(url, ask[0], ask[1], connection), asks))


AUTOMATIONS = {"automations": {"tags": {"all_": ["forkflow"]}}}  # the automations forkflow made


def automation_signals(answer: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{a['id']}@{a.get('updated')}" for a in answer)


def signals_query(prefix: str) -> dict[str, Any]:
    """One page of one deployment, the latest updated: its answer carries the count too."""
    return {"deployments": {"name": {"like_": prefix}}, "sort": "UPDATED_DESC", "limit": 1, "page": 1}


def signals_from(page: dict[str, Any]) -> dict[str, Any]:
    return {"count": page["count"], "latest": page["results"][0]["updated"] if page["results"] else None}


def post(url: str, path: str, body: dict[str, Any], connection: Connection) -> Any:
    """The JSON answer to one POST to the Prefect API; OSError when the server does not answer 2xx."""
    from tasks.adapters.plain_http import request

    context = None
    if url.startswith("https://"):
        import ssl

        context = ssl.create_default_context(cafile=connection.verify if isinstance(connection.verify, str) else None)
        if connection.verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    answer = request(f"{url.rstrip('/')}/{path}", "POST", json.dumps(body).encode(),
                     {"Content-Type": "application/json", **connection.headers}, TIMEOUT, context)
    if not answer.ok:
        raise ConnectionError(f"the Prefect API answered {answer.status} to {path}")
    return json.loads(answer.body)
