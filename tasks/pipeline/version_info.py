"""The `version_info` `prefect deploy` sends with each deployment, from Prefect's own getters.

Prefect infers it from CI variables (GitHub, GitLab, Bitbucket, Azure DevOps)
or the git checkout, in that order, or only from the kind a deployment's
`version_type` names (`prefect:simple`: none); what it infers also gives the
version of a deployment whose file names none. The git facts are read here
from the flows folder and handed to Prefect's getters, so they run no git of
their own in forkflow's working directory. What Prefect inferred is
remembered in the state folder by what it was inferred from (the version type,
the git facts, the CI variables Prefect's getters read, Prefect's version), so
a later deploy of the same commit does not import Prefect to infer it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tasks.adapters.git import Git
from tasks.pipeline.settings import read_json, write_json

SIMPLE = "prefect:simple"
INFOS_FILE = "prefect-version-info.json"
CI_PREFIXES = ("GITHUB_", "CI_", "BITBUCKET_", "BUILD_")  # the variables Prefect's getters read start so
KEPT = 64  # remembered inferences (one per commit and CI job, roughly)


class VersionInfos:
    """Prefect's inferred version info for one checkout, per version_type (None: Prefect's default order)."""

    def __init__(self, folder: Path, file: Path | None = None):
        self.file = file
        self.facts = git_facts(Git(folder))
        self.known: dict[str | None, dict[str, Any] | None] = {}

    def of(self, version_type: str | None) -> dict[str, Any] | None:
        """What Prefect infers (without its `version`, which is the deployment's), or None when it infers nothing."""
        if version_type not in self.known:
            self.known[version_type] = self.remembered(version_type)
        return self.known[version_type]

    def remembered(self, version_type: str | None) -> dict[str, Any] | None:
        if version_type == SIMPLE:
            return None
        from importlib.metadata import version

        given = {"type": version_type, "facts": self.facts, "prefect": version("prefect"),
                 "ci": {name: value for name, value in os.environ.items() if name.startswith(CI_PREFIXES)}}
        key = hashlib.sha256(json.dumps(given, sort_keys=True).encode()).hexdigest()
        saved = (read_json(self.file) or {}) if self.file is not None else {}
        if key in saved:
            found: dict[str, Any] | None = saved[key]["info"]
            return found
        import asyncio

        info = asyncio.run(self.inferred(version_type))
        if self.file is not None:
            kept = dict(list(saved.items())[-(KEPT - 1):])
            write_json(self.file, {**kept, key: {"info": info}})
        return info

    async def inferred(self, version_type: str | None) -> dict[str, Any] | None:
        from prefect._internal import versioning

        getters = {versioning.VersionType.GITHUB: versioning.get_github_version_info,
                   versioning.VersionType.GITLAB: versioning.get_gitlab_version_info,
                   versioning.VersionType.BITBUCKET: versioning.get_bitbucket_version_info,
                   versioning.VersionType.AZUREDEVOPS: versioning.get_azuredevops_version_info,
                   versioning.VersionType.GIT: self.git_version_info}
        if version_type == SIMPLE:
            return None
        chosen = [getters[versioning.VersionType(version_type)]] if version_type else list(getters.values())
        for getter in chosen:
            try:
                found = await getter(message=self.facts.get("message") or None)  # type: ignore[operator]
            except ValueError:
                continue
            return dict(found.model_dump(mode="json"))
        return None

    async def git_version_info(self, message: str | None = None) -> Any:
        from prefect._internal.versioning import get_git_version_info

        if "commit_sha" not in self.facts:
            raise ValueError("not a git checkout")
        url = self.facts.get("url")
        if not url:
            raise ValueError("Could not determine git repository URL")
        repository = urlparse(url).path.strip("/").removesuffix(".git")
        return await get_git_version_info(commit_sha=self.facts["commit_sha"], message=message or "-",
                                          branch=self.facts["branch"], url=url, repository=repository)


def git_facts(git: Git) -> dict[str, str]:
    """The commit, its message's first line, the branch and origin's URL (when there is one) of the checkout;
    nothing outside a git checkout or before its first commit. Three git calls, made at once."""
    from tasks.pipeline.parallel import together

    head, branch, origin = (outcome.get() for outcome in together(
        lambda: git.call(("log", "-1", "--pretty=%H%n%B"), check=False),
        lambda: git.call(("rev-parse", "--abbrev-ref", "HEAD"), check=False),
        lambda: git.call(("config", "--get", "remote.origin.url"), check=False)))
    if head.returncode != 0:
        return {}
    sha, _, body = head.stdout.strip().partition("\n")
    lines = body.strip().splitlines()
    facts = {"commit_sha": sha.strip(), "message": lines[0] if lines else "", "branch": branch.stdout.strip()}
    if origin.returncode == 0:
        facts["url"] = origin.stdout.strip()
    return facts
