"""Which BuildKit provenance attestation an image build asks for (`[images] provenance`).

forkflow builds with `docker buildx build --load` and pushes through the engine. buildx loads an image with
an explicit attestation only into an engine that uses the containerd image store (`docker info` shows
DriverStatus `driver-type io.containerd.snapshotter.v1`), whatever the builder's driver: without that
store the `docker` driver refuses attestations ("Attestation is not supported for the docker driver") and
the other drivers fail the load ("docker exporter does not currently support exporting manifest lists",
docker/buildx#1714). The engine's built-in BuildKit (docker 20.10, DOCKER_BUILDKIT=1) has no
`--provenance` at all. An image built for a named platform is one of the images forkflow joins into one
index, whose entries must each be one image manifest: an attestation would make each an index.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_BUILDX = "the engine's built-in BuildKit (docker 20.10 with DOCKER_BUILDKIT=1) has no --provenance"
NO_CONTAINERD_STORE = ("buildx loads (--load) an image with an attestation only into an engine with the containerd "
                       "image store, which this engine does not use (docker/buildx#1714)")
JOINED = ("each platform's image is joined into one index by forkflow, and an attestation would make it an index "
          "of its own")


@dataclass(frozen=True)
class BuilderFacts:
    """What decides whether a build can make and keep a provenance attestation."""

    buildx: bool  # `docker buildx build`, not the engine's built-in BuildKit
    containerd_store: bool  # the engine stores images in containerd (DriverStatus driver-type io.containerd.snapshotter.v1)
    joined: bool = False  # this build is one platform's image of an index forkflow puts together


@dataclass(frozen=True)
class Provenance:
    """The mode a build asks for (`off`, `min`, `max`), why none is made when that is so, and whether the
    configured value is refused."""

    mode: str
    reason: str = ""  # why there is no attestation (set when the mode is off for lack of support)
    refused: bool = False  # min/max asked for where the builder cannot make or keep one


def unsupported_reason(facts: BuilderFacts) -> str:
    """Why this build cannot make and keep an attestation; empty when it can."""
    if not facts.buildx:
        return NO_BUILDX
    if not facts.containerd_store:
        return NO_CONTAINERD_STORE
    return JOINED if facts.joined else ""


def decide(setting: str, facts: BuilderFacts) -> Provenance:
    """`auto`: min where the build can make and keep it, else off with the reason; `off` stays off; `min` and
    `max` are refused (with the reason) where it cannot."""
    reason = unsupported_reason(facts)
    if setting == "off":
        return Provenance("off")
    if setting == "auto":
        return Provenance("off", reason) if reason else Provenance("min")
    return Provenance(setting, reason, refused=True) if reason else Provenance(setting)


def summary(setting: str, facts: BuilderFacts) -> str:
    """One line saying what `[images] provenance = <setting>` makes with this builder, and why not when it
    makes none."""
    chosen = decide(setting, facts)
    if chosen.refused:
        return f"[images] provenance = {setting} is refused here: {chosen.reason}"
    if chosen.mode == "off":
        why = f": {chosen.reason}" if chosen.reason else ""
        return f"no provenance attestation ([images] provenance = {setting}){why}"
    return f"provenance attestation mode={chosen.mode} ([images] provenance = {setting})"
