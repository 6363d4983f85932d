"""image:<cell>: one image per Python x flavor: find one with the same inputs or build it, smoke-test, push."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.adapters import buildkit
from tasks.adapters import docker as docker_adapter
from tasks.adapters.console import say
from tasks.core import image_tags
from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.core.versions import UNSHIPPABLE_FIX, unshippable
from tasks.core.wheelhouse import CONSTRAINTS
from tasks.pipeline.checks import is_forgotten
from tasks.pipeline.credentials import registry_auth
from tasks.pipeline.settings import read_report
from tasks.stages.image import dashboard, evidence, inputs, platforms, split, tags
from tasks.stages.image.base import chosen_bases
from tasks.stages.image.cell import CellPlan, current_inputs, plan_cell
from tasks.stages.image.setup import ImageSetup, image_setup
from tasks.stages.image.smoke_test import smoke_test
from tasks.stages.image.state import engine, read_state, revision, save_state, saved_values, update_report


def image_action(key: str, run_id: str, dry_run: bool = False) -> dict[str, Any]:
    setup = image_setup(dry_run)
    if setup.dry_run:
        try:
            client = engine()
        except ForkflowError:
            client = None
        planned = inputs.load_plan(setup, revision(setup), chosen_bases(setup, client)).item(key)
        return describe_plan(setup, planned)
    client = engine()
    plan = inputs.load_plan(setup, revision(setup), chosen_bases(setup, client))
    planned = plan.item(key)
    only = split.selected(setup)  # one platform of a split build: only its emulation is needed here
    platforms.check_emulation(client, (only,) if only else setup.images.platforms)
    if not planned.deps_ready:
        folders = ", ".join(str(request.folder) for request in planned.deps)
        raise ForkflowError(f"image:{key}: the dependency wheelhouse {folders} is not made for these "
                            "packages", fix=f"run `doit image-deps:{planned.spec.python}` (`doit image` runs it)")
    record = base_record(planned, run_id)
    if setup.plan_only:
        keep_pushed(setup, record)
    try:
        if only:  # one platform of the cell, in its own state folder or on its own runner
            return split.build_one(setup, plan, planned, client, record, only)
        return build_test_push(setup, plan, planned, client, record)
    except ForkflowError as err:
        record.update(status="failed", reason=err.what.splitlines()[0])
        update_report(setup, plan.keys, images=[record])
        raise


def build_test_push(setup: ImageSetup, plan: inputs.Plan, planned: inputs.Planned, client: Any,
                    record: dict[str, Any]) -> dict[str, Any]:
    images = setup.images
    spec = planned.spec
    if images.push:
        refuse_unshippable(setup, spec)
    auth = registry_auth(setup.settings) if images.push else None
    wanted = platforms.targets(client, images.platforms)
    built_inputs, digest = current_inputs(setup, client, planned, wanted)
    record.update(input_hash=digest, base_image_id=docker_adapter.image_id(client, spec.base_image))
    there = tags.in_registry(setup, spec, digest, auth, wanted, record)
    if there is not None and there.up_to_date and not is_forgotten(f"image:{spec.key}"):
        if wanted:  # each platform's digest, from the index
            record["platforms"] = platforms.registry_platforms(spec, auth)
        local = docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest)
        if local:
            record.update(core.size_fields(docker_adapter.image_size(client, local[0]),
                                           docker_adapter.image_size(client, spec.base_image)))
        record.update(digest=there.current.get(spec.tags[0]) or next(iter(there.current.values()), None))
        evidence.sbom_in_registry(spec, record, auth)
        return found_in_registry(setup, plan, spec, built_inputs, record, there)
    cell = plan_cell(setup, client, planned, saved_values(read_state(setup, spec.key)), (built_inputs, digest))
    if auth:  # the credentials are checked now, before a build
        docker_adapter.login(client, images.registry, auth["username"], auth["password"])
    made = make_images(setup, plan, planned, client, cell, record, wanted)
    image = next(iter(made.values()))
    record.update(core.size_fields(docker_adapter.image_size(client, image),
                                   docker_adapter.image_size(client, spec.base_image)))
    started = time.monotonic()
    installed = {}
    for platform, image in made.items():
        answer, installed[platform] = smoke_test(setup, client, planned, image, platform or None)
        dashboard.keep(record, platform, answer)
    record.update(smoke="passed", smoke_seconds=round(time.monotonic() - started, 2),
                  sbom=evidence.write_sbom(setup, spec, cell.digest, installed))
    if auth and cell.steps.push:  # asked again just before the push: another run may have pushed meanwhile
        chosen = tags.checked(spec, cell.digest, auth, wanted, record, announce=False).push
    else:
        chosen = tuple(tag for tag in spec.tags if tag not in record.get("kept", {}))
    tag_locally(client, spec, made, chosen)
    if setup.plan_only:
        say(f"image:{spec.key}: would push {len(chosen)} tags ({', '.join(chosen)}); `doit image` pushes them")
    if auth and cell.steps.push:
        started = time.monotonic()
        if wanted:
            record.update(platforms.push_all(client, spec, made, auth, chosen))
        else:
            record["pushed"] = {tag: docker_adapter.push(client, spec.repository, tag, auth) for tag in chosen}
            record["digest"] = next(iter(record["pushed"].values()), None)
        evidence.attach_sbom(spec, record, auth)
        record["push_seconds"] = round(time.monotonic() - started, 2)
    save_state(setup, spec.key, {"inputs": cell.inputs, "input_hash": cell.digest, "image_id": image,
                                   "target": cell.target, "pushed": record.get("pushed", {}),
                                   "build_tags": record.get("build_tags"), "images": made if wanted else {}})
    update_report(setup, plan.keys, images=[record])
    pushed = f", pushed {len(record.get('pushed', {}))} tags ({core.short(record.get('digest'))})" if auth else ""
    on = f" for {', '.join(wanted)}" if wanted else ""
    size = f", {record['size_mb']} MB" if "size_mb" in record else ""
    say(f"image:{spec.key}: {record['status']} {image[:19]}{on}{size}{pushed}")
    return {"made": f"{record['status']} {spec.tags[0]}{on}{size}{pushed}", "input_hash": cell.digest, "image_id": image,
            "target": core.input_hash(cell.target)}


def refuse_unshippable(setup: ImageSetup, spec: core.ImageSpec) -> None:
    """An image is pushed only when every package in it has a version that names its content."""
    names = {w.name for w in spec.wheels}
    report = read_report("wheel", setup.settings) or {}
    problems = unshippable(p for p in report.get("packages", []) if p.get("name") in names)
    if problems:
        raise ForkflowError(f"image:{spec.key}: not pushing: these versions do not name their content:\n"
                            + "\n".join(f"  - {line}" for line in problems),
                            where=str(setup.settings.fork_path), fix=UNSHIPPABLE_FIX + "; then `doit image`")


def make_images(setup: ImageSetup, plan: inputs.Plan, planned: inputs.Planned, client: Any, cell: CellPlan,
                record: dict[str, Any], wanted: tuple[str, ...]) -> dict[str, str]:
    """platform -> the image of these inputs for it ("" -> the one image of a plain build): found or built."""
    if not cell.steps.build:
        record.update(status="up-to-date",
                      reason=f"an image with these inputs is already built (input hash {cell.digest[:12]})")
        made = dict(cell.images) if wanted else {"": cell.existing}
    else:
        made = {}
        for platform in wanted or ("",):
            made[platform] = cell.images.get(platform) or build(setup, plan, planned, client, cell, record,
                                                                platform or None)
        record.update(status="built", reason="; ".join(cell.steps.rebuild_reasons) or "built")
    tags = [platforms.build_tag(planned.spec, cell.digest, platform or None) for platform in made]
    drop_previous_build_tags(setup, client, planned.spec.key, tags)
    record.update(image_id=next(iter(made.values())), build_tags=tags, **({"images": made} if wanted else {}))
    return made


def tag_locally(client: Any, spec: core.ImageSpec, made: dict[str, str], names: tuple[str, ...]) -> None:
    """The image under its tags in the engine (not a floating tag the registry keeps on a newer version): the
    plain build's, or the image of the engine's own platform."""
    native = docker_adapter.engine_platform(client)
    image = made.get("") or next((i for p, i in made.items() if image_tags.same_platform(p, native)), None)
    for tag in names if image else ():
        docker_adapter.tag_image(client, image or "", spec.repository, tag)


def found_in_registry(setup: ImageSetup, plan: inputs.Plan, spec: core.ImageSpec, built_inputs: dict[str, Any],
                      record: dict[str, Any], there: image_tags.TagPlan) -> dict[str, Any]:
    """The registry has this cell's image under every tag (but floating ones kept on a newer version): nothing
    is built, tested or pushed."""
    pushed = dict(there.current)
    digest, input_hash = pushed.get(spec.tags[0]) or next(iter(pushed.values()), None), core.input_hash(built_inputs)
    target = core.push_target(spec, True)
    record.update(image_id=None, status="up-to-date", pushed=pushed, digest=digest,
                  reason=f"the registry has every tag with these inputs (input hash {input_hash[:12]}): "
                         "nothing built or pushed")
    save_state(setup, spec.key, {"inputs": built_inputs, "input_hash": input_hash, "image_id": "",
                                   "target": target, "pushed": pushed, "from_registry": True})
    update_report(setup, plan.keys, images=[record])
    size = f", {record['size_mb']} MB" if "size_mb" in record else ""
    say(f"image:{spec.key}: up-to-date in the registry ({core.short(digest)}{size}), nothing built or pushed")
    return {"made": f"up-to-date {spec.tags[0]} (registry){size}", "input_hash": input_hash, "image_id": "",
            "target": core.input_hash(target)}


def base_record(planned: inputs.Planned, run_id: str) -> dict[str, Any]:
    spec = planned.spec
    return {
        "name": spec.key, "python": spec.python, "flavor": spec.flavor, "version": spec.version,
        "tags": list(spec.tags), "references": spec.references(), "repository": spec.repository,
        "status": "failed", "digest": None, "image_id": None, "reason": "", "pushed": {},
        "base_image": spec.base_image,
        "packages": [{"name": w.name, "version": w.version, "file": w.file, "sha256": w.sha256} for w in spec.wheels],
        "run": run_id,
    }


def keep_pushed(setup: ImageSetup, record: dict[str, Any]) -> None:
    """A run that only plans pushes keeps what an earlier run pushed (the registry still has it) and says its own
    push is planned."""
    earlier: dict[str, Any] = next((r for r in (read_report("image", setup.settings) or {}).get("images", [])
                    if r.get("name") == record["name"]), {})
    for name in ("pushed", "digest", "platforms"):
        if earlier.get(name):
            record[name] = earlier[name]
    record["push_planned"] = list(record["tags"])


def build(setup: ImageSetup, plan: inputs.Plan, planned: inputs.Planned, client: Any, cell: CellPlan,
          record: dict[str, Any], platform: str | None = None) -> str:
    """A new image from these inputs (for `platform`, on the base image the input hash names, by its digest in
    the base's registry); returns its id."""
    spec, digest_of_inputs = planned.spec, cell.digest
    buildargs = dict(spec.build_args)
    if platform:
        base = json.loads(cell.inputs["base_image_content"])[platform]
        buildargs["BASE_IMAGE"] = image_tags.pinned(spec.base_image, base)
    build_tag = platforms.build_tag(spec, digest_of_inputs, platform)
    labels = core.image_labels(spec, digest_of_inputs, plan.source, plan.revision,
                               created_time())
    context = assemble_context(setup, plan, planned, labels)
    on = f" for {platform}" if platform else ""
    say(f"image:{spec.key}: building {build_tag}{on}")
    request = buildkit.BuildRequest(context, build_tag, buildargs=buildargs, platform=platform,
                                    pull=platform is not None, auths=pull_auths(setup, spec, platform),
                                    provenance=evidence.provenance(setup, platform, record),
                                    **cache_sources(setup, spec, platform))
    suffix = image_tags.arch_suffix(platform)
    result = buildkit.build_image(client, request, log_file=setup.logs_dir / f"image-{spec.key}{suffix}.log",
                                  progress=f"image:{spec.key}{suffix}")
    done = {"build_tag": build_tag, "steps": result.steps, "cached_steps": result.cached_steps,
            "build_seconds": round(result.seconds, 2)}
    record.update(done)
    if platform:
        record.setdefault("builds", {})[platform] = done
    say(f"image:{spec.key}: built{on} in {result.seconds:.1f}s, {result.cached_steps} of {result.steps} steps "
        "from cache")
    return result.image_id


def created_time() -> str:
    """The `created` label: SOURCE_DATE_EPOCH when set (the same inputs then make the same image, on one run or
    split over runners), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch.isdigit() else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pull_auths(setup: ImageSetup, spec: core.ImageSpec, platform: str | None) -> dict[str, dict[str, str]]:
    """The credentials the build pulls with: the images registry's when it pushes there (its cache is read
    there), and, for a platform build, the base's registry's when it is that one."""
    images = setup.images
    found = {}
    host = image_tags.split_reference(spec.base_image)[0]
    auth = platforms.base_auth(setup, host) if platform else None
    if auth:
        found[host] = auth
    if images.push:
        found[setup.registry_host] = registry_auth(setup.settings)
    return found


def cache_sources(setup: ImageSetup, spec: core.ImageSpec, platform: str | None) -> dict[str, Any]:
    """What the build may reuse from the registry when images are pushed there: the cell's earlier images
    (their inline cache: the first and the most floating tag), and the cell's own registry cache ref."""
    if not setup.images.push:
        return {}
    arch = image_tags.arch_suffix(platform)
    tags = dict.fromkeys((spec.tags[0], spec.tags[-1]))
    return {"cache_images": tuple(f"{spec.repository}:{tag}" for tag in tags),
            "cache_ref": f"{spec.repository}:buildcache-{spec.key}{arch}"}


def drop_previous_build_tags(setup: ImageSetup, client: Any, key: str, new_tags: list[str]) -> None:
    state = read_state(setup, key) or {}
    previous = state.get("build_tags") or [state.get("build_tag")]
    for tag in previous:
        if tag and tag not in new_tags:
            docker_adapter.untag(client, tag)


def assemble_context(setup: ImageSetup, plan: inputs.Plan, planned: inputs.Planned, labels: dict[str, str]) -> Path:
    """<state>/images/<key>/context: the Dockerfile (labels last) and only the wheels this image installs."""
    spec = planned.spec
    context = setup.state_folder / spec.key / "context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(planned.dockerfile + "\n" + core.label_instruction(labels), encoding="utf-8")
    for folder, wheels in (("wheels", spec.packages), ("extras", spec.extras)):
        (context / folder).mkdir()
        for wheel in wheels:
            check_sha256(wheel)
            place(Path(wheel.path), context / folder / wheel.file)
    (context / "deps").mkdir()
    folders = [request.folder for request in planned.deps]
    for name, _ in spec.wheelhouse:  # every platform's wheels: pip on each platform picks its own
        place(next((f / name for f in folders if (f / name).is_file()), folders[0] / name), context / "deps" / name)
    (context / "deps" / CONSTRAINTS).write_text("".join(f"{pin}\n" for pin in spec.pins), encoding="utf-8")
    return context


def check_sha256(wheel: core.Wheel) -> None:
    stat = Path(wheel.path).stat()
    found = inputs.file_sha256(wheel.path, stat.st_mtime_ns, stat.st_size)
    if found != wheel.sha256:
        raise ForkflowError(f"{wheel.path} does not match wheel.json (sha256 {found[:12]}, listed {wheel.sha256[:12]})",
                            fix="run `doit wheel` again so wheel.json describes the files on disk")


def place(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def describe_plan(setup: ImageSetup, planned: inputs.Planned) -> dict[str, Any]:
    """The dry run of one image: its tags and what the real run would do (the same plan_cell)."""
    spec = planned.spec
    previous = read_state(setup, spec.key)
    lines = [f"image:{spec.key}  {spec.repository}  tags: {', '.join(spec.tags)}"]
    try:
        client = engine()
        if not planned.deps_ready:
            raise ForkflowError(f"its dependency wheelhouse is not made yet (`doit image-deps:{spec.python}` would make it)")
        cell = plan_cell(setup, client, planned, saved_values(previous))
    except ForkflowError as err:
        lines.append(f"  cannot tell whether it would rebuild: {err.what.splitlines()[0]}")
        for line in lines:
            say(line)
        return {"made": "dry run: " + lines[1].strip(), **saved_values(previous)}
    found, notes = tags.registry_view(setup, client, spec, cell.digest)
    lines += dry_run_lines(cell, len(found.push) if found else len(spec.tags), bool(found and found.refused)) + notes
    for line in lines:
        say(line)
    return {"made": "dry run: " + lines[1].strip(), **saved_values(previous)}


def dry_run_lines(cell: CellPlan, count: int, refused: bool = False) -> list[str]:
    steps = cell.steps
    if refused:
        why = f" ({'; '.join(steps.rebuild_reasons)})" if steps.build and steps.rebuild_reasons else ""
        return [f"  would not build or push: refused by the registry's tags (below){why}"]
    if steps.stale is None:
        return [f"  would not rebuild: inputs unchanged (input hash {cell.digest[:12]})",
                "  would not push: already pushed with these tags" if steps.push else
                "  would not push: [images] push = false"]
    build = ("  would rebuild: " + "; ".join(steps.rebuild_reasons or ("no image with these inputs in the engine",))
             if steps.build else f"  would not rebuild: an image with these inputs is built (input hash {cell.digest[:12]})")
    if not steps.push:
        return [build, "  would not push: [images] push = false"]
    return [build, f"  would push {count} tags" + (": " + "; ".join(steps.push_reasons) if steps.push_reasons else "")]
