"""The pipeline's stages in order, and which of them write to something outside this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.core.config import Config

PIPELINE = ("demo", "services", "sync", "version", "wheel", "verify", "publish", "notes", "image", "flows", "deploy")


WRITING_STAGES = ("sync", "publish", "image", "deploy")


def planned_only(config: Config) -> list[str]:
    """Stages whose remote writes a bare `doit` only plans: none on the demo, else those not in default_writes."""
    if config.demo is not None:
        return []
    return [stage for stage in WRITING_STAGES if stage not in config.default_writes]


def configured_stages(config: Config) -> list[str]:
    """The pipeline's stages, in order, that the config has the sections for."""
    feeds = {
        "demo": config.demo, "services": config.services, "sync": config.fork, "version": config.fork,
        "wheel": config.fork, "verify": config.fork, "publish": config.index and config.fork,
        "notes": config.index and config.fork, "image": config.images,
        "flows": config.flows, "deploy": config.flows and config.environments,
    }
    return [stage for stage in PIPELINE if feeds[stage]]
