"""The work of `doit promote`: read the source environment's deployments, check they share one code version,
and write the target's with it (imported when promote runs, so a start does not pay for the deploy machinery)."""

from __future__ import annotations

import dataclasses
from typing import Any

from tasks.adapters.console import say
from tasks.adapters.prefect import PrefectApi
from tasks.core.deployment import COMMIT_TAG, VERSION_TAG, Desired
from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.names import split_names, unknown_names
from tasks.pipeline.credentials import environment_connection
from tasks.pipeline.settings import Settings, write_report
from tasks.stages.deploy.apply import DeployRun
from tasks.stages.deploy.desired import environment_settings, flows_listing, load_desired
from tasks.stages.deploy.report import deploy_report, summarize


def promote_flows(current: Settings, source: str, target: str, flows: str, dry: bool) -> dict[str, str]:
    check_environments(current, source, target)
    listing = flows_listing(current)
    names = chosen_flows(listing, flows)
    targets = [d for d in load_desired(current, listing, [target], dry_run=dry, build_images=False) if d.flow in names]
    sources = read_sources(current, listing, source, [d.key for d in targets])
    version, commit = one_code_version(sources, source)
    images = {key: (item.get("job_variables") or {}).get("image") for key, item in sources.items()}
    promoted = [with_source(d, sources[d.key], version, commit) for d in targets]
    run = DeployRun(current, listing, dry, image_of=lambda desired, _pool: images.get(desired.key), stage="promote")
    results = run.apply(promoted, prune_envs=[], complete=not flows.strip())
    report = {**deploy_report(listing, results, run, dry), "from": source, "to": target,
              "version": version, "commit": commit, "images": images, "status": "ok"}
    write_report("promote", report, current)
    say(f"promote {source} -> {target}: code version {version} ({commit[:7]})")
    return {"made": f"{source}->{target} {version}: " + summarize(results, run, dry, "promote")}


def check_environments(current: Settings, source: str, target: str) -> None:
    known = list(current.config.environments)
    problems = []
    for option, value in (("--from", source), ("--to", target)):
        if not value:
            problems.append(f"{option} is required")
        elif value not in known:
            problems.append(f"{option} {value!r} is not a configured environment")
    if not problems and source == target:
        problems.append("--from and --to name the same environment")
    if problems:
        raise ConfigError("promote: " + "; ".join(problems), where="doit promote --from ENV --to ENV",
                          fix=f"environments in {current.config_file}: {', '.join(known)}")


def chosen_flows(listing: dict[str, Any], flows: str) -> list[str]:
    known = sorted({entry["flow"] for entry in listing.get("deployments", [])})
    if not flows.strip():
        return known
    wanted = split_names(flows)
    unknown = unknown_names(wanted, known)
    if unknown:
        raise ConfigError(f"promote: no flow named {', '.join(unknown)}", where="--flows",
                          fix=f"flows found: {', '.join(known) or 'none'}")
    return wanted


def read_sources(current: Settings, listing: dict[str, Any], source: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The source environment's deployments by deployment key (flow, and name as written); refuses when any is missing."""
    sources = {d.key: d for d in load_desired(current, listing, [source], build_images=False)}
    wanted = {key: sources[key] for key in keys if key in sources}
    api_url = environment_settings(current, source).api_url
    with PrefectApi(api_url, connection=environment_connection(current, source)) as api:
        items = api.read_deployments(names=sorted({d.name for d in wanted.values()}))
        flow_names = api.flow_names([item["flow_id"] for item in items])
    found = {f"{flow_names.get(item['flow_id'])}/{item['name']}": item for item in items}
    missing = [f"{d.flow} ({d.name})" for key, d in wanted.items() if d.identity not in found] + \
        [key for key in keys if key not in sources]
    if missing:
        raise ForkflowError(f"promote: source deployments missing in {source}: {', '.join(missing)}; nothing was promoted",
                            where=api_url, fix=f"deploy them to {source} first (`doit deploy` on this branch), or choose --flows")
    return {key: found[d.identity] for key, d in wanted.items()}


def tag_value(item: dict[str, Any], key: str) -> str | None:
    for tag in item.get("tags") or []:
        if tag.startswith(key + "="):
            return str(tag.split("=", 1)[1])
    return None


def one_code_version(sources: dict[str, dict[str, Any]], source: str) -> tuple[str, str]:
    """The single (version, commit) the source deployments share; refuses when they differ."""
    seen = {flow: (item.get("version") or tag_value(item, VERSION_TAG) or "", tag_value(item, COMMIT_TAG) or "")
            for flow, item in sources.items()}
    distinct = sorted({version for version, _ in seen.values()})
    if len(distinct) != 1 or not distinct[0]:
        listing = ", ".join(f"{flow}={version or '(none)'}" for flow, (version, _) in sorted(seen.items()))
        raise ForkflowError(f"promote: the {source} deployments do not share one code version ({listing}); nothing was promoted",
                            fix=f"redeploy {source} so all flows carry the same version, or promote them separately with --flows")
    commits = sorted({commit for _, commit in seen.values()})
    return distinct[0], commits[0] if len(commits) == 1 else ""


def with_source(desired: Desired, source: dict[str, Any], version: str, commit: str) -> Desired:
    """The target's spec, carrying the source's code: version, commit tag, entrypoint."""
    spec = dict(desired.spec)
    spec["version"] = version
    spec["entrypoint"] = source.get("entrypoint") or spec["entrypoint"]
    kept = [t for t in spec["tags"] if not t.startswith((VERSION_TAG + "=", COMMIT_TAG + "="))]
    spec["tags"] = kept + [f"{VERSION_TAG}={version}"] + ([f"{COMMIT_TAG}={commit}"] if commit else [])
    return dataclasses.replace(desired, spec=spec)
