"""The questions a run's up-to-date checks will ask, sent as the run starts (see tasks.pipeline.prefetch).

It knows which stage asks what, so it sits beside dodo.py, above the stages.
"""

from __future__ import annotations

from tasks.pipeline.settings import Settings

VERSIONED = {"version", "ui", "wheel", "verify", "pins", "publish", "notes", "image", "image-deps", "image-join", "flows",
             "deploy", "promote"}  # the stages whose run checks the versions first


def send_early_questions(current: Settings, targets: list[str]) -> None:
    """What the checks of a run of `targets` will ask: the services' health (when the config has local services),
    the remotes and the clone (when sync is among them), the versions' inputs (for what is built from them), the
    checkout's file listing (for wheel, flows and deploy), the flows checkout's HEAD and branch (for flows and
    deploy), the Prefect servers' signals (when deploy is), the files on the index (when publish is), the Docker
    engine's images and the registry's tags (when image is)."""
    from tasks.stages.services import ask_health_early

    stages = {target.split(":", 1)[0] for target in targets}
    ask_health_early(current)
    if "sync" in stages and current.config.fork is not None:
        from tasks.stages.sync.check import ask_early
        from tasks.stages.sync.setup import sync_setup

        ask_early(sync_setup(current))
    if stages & VERSIONED and current.fork_path is not None:
        from tasks.stages.version import ask_inputs_early

        ask_inputs_early(current)
    if stages & {"ui", "wheel", "flows", "deploy"} and current.fork_path is not None:  # deploy needs flows
        from tasks.pipeline.workspace import ask_entries_early

        ask_entries_early(current.fork_path)
    if stages & {"flows", "deploy"}:
        from tasks.stages.flows import ask_where_early

        ask_where_early(current)
    if "deploy" in stages:
        from tasks.stages.deploy.check import ask_signals_early

        ask_signals_early(current)
    if "publish" in stages and current.config.index is not None:
        from tasks.stages.publish import ask_index_early

        ask_index_early(current)
    if stages & {"image", "image-base"} and current.config.images is not None:
        from tasks.stages.image.look import ask_early as ask_images_early
        from tasks.stages.image.setup import image_setup

        ask_images_early(image_setup(current=current))

