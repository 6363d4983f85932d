"""prefect.yaml as real flow repositories write it: each case here comes from a public repository that
`prefect deploy --all` deploys (the end-to-end comparison with Prefect's CLI is in tests/test_flow_formats.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.core.deploydefs import Planned
from tasks.core.deployment import Desired
from tasks.core.discovery import FlowInfo, discover_source
from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.prefect_yaml import parse_file, planned_deployments
from tasks.core.runtime import with_runtime

SOURCES = {
    "flows/metadata.py": "from prefect import flow\n\n@flow\ndef generate_metadata():\n    pass\n",
    "pipelines/modal_a.py": "from prefect import flow\n\n@flow\ndef main():\n    pass\n",
    "pipelines/modal_b.py": "from prefect import flow\n\n@flow\ndef main(x: int = 1):\n    pass\n",
    "src/prefect_modal/flows/__init__.py": "from prefect import flow\n\n@flow\ndef run_my_flow():\n    pass\n",
}
POOL = {"name": "dev-pool"}


def flows() -> list[FlowInfo]:
    found = []
    for file, text in SOURCES.items():
        listed, errors = discover_source(text, file)
        assert errors == []
        found += listed
    return found


def plan(*deployments: dict[str, Any], **top: Any) -> list[Planned]:
    doc = parse_file({**top, "deployments": list(deployments)}, "prefect.yaml")
    return planned_deployments(doc, flows(), "prefect.yaml", "")[0]


def layer(planned: Planned) -> dict[str, Any]:
    ((_, only),) = planned.layers
    return only


def refusal(*deployments: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        plan(*deployments)
    return str(caught.value)


def test_schedule_null_is_no_schedule() -> None:  # as CBIIT's 57 deployments write it
    (planned,) = plan({"name": "reader", "entrypoint": "flows/metadata.py:generate_metadata", "schedule": None,
                       "work_pool": POOL})
    assert "schedules" not in layer(planned)


def test_dot_slash_and_module_entrypoints_find_their_flow_and_stay_as_written() -> None:
    planned = plan({"name": "cpu", "entrypoint": "./flows/metadata.py:generate_metadata", "work_pool": POOL},
                   {"name": "a", "entrypoint": "pipelines.modal_a:main", "work_pool": POOL},
                   {"name": "b", "entrypoint": "pipelines.modal_b:main", "work_pool": POOL})
    assert [(p.flow.file, layer(p)["entrypoint"]) for p in planned] == [
        ("flows/metadata.py", "./flows/metadata.py:generate_metadata"),
        ("pipelines/modal_a.py", "pipelines.modal_a:main"),
        ("pipelines/modal_b.py", "pipelines.modal_b:main")]
    (installed,) = plan({"name": "modal", "entrypoint": "prefect_modal.flows:run_my_flow", "work_pool": POOL})
    assert installed.flow.file == "src/prefect_modal/flows/__init__.py", "a package in the src layout"
    assert "'pipelines/modal_a.py:main' differs only in case" in refusal(
        {"name": "a", "entrypoint": "pipelines/Modal_A.py:main", "work_pool": POOL})
    assert "no flow at 'pipelines.modal_c:main'" in refusal(
        {"name": "c", "entrypoint": "pipelines.modal_c:main", "work_pool": POOL})


def test_a_custom_image_without_pull_steps_runs_from_opt_prefect_as_prefect_deploy_sets() -> None:
    pool = {"name": "k8s", "job_variables": {"image": "{{ $PREFECT_IMAGE }}"}}
    (custom,) = plan({"name": "s3", "entrypoint": "flows/metadata.py:generate_metadata", "work_pool": pool}, pull=None)
    assert layer(custom)["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect"}}]
    (given,) = plan({"name": "s3", "entrypoint": "flows/metadata.py:generate_metadata", "work_pool": pool},
                    pull=[{"prefect.deployments.steps.set_working_directory": {"directory": "/app"}}])
    assert layer(given)["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "/app"}}]
    (plain,) = plan({"name": "s3", "entrypoint": "flows/metadata.py:generate_metadata", "work_pool": POOL})
    assert "pull" not in layer(plain), "no image: the folder of the file, decided with the worker's path"


def test_a_template_no_step_fills_is_refused_naming_the_missing_step() -> None:
    message = refusal({"name": "x", "entrypoint": "flows/metadata.py:generate_metadata",
                       "work_pool": {**POOL, "job_variables": {"env": {"HOST": "{{ flow_run.name }}"}}}})
    assert "{{ flow_run.name }}: no build or push step has the id 'flow_run' (step ids here: none)" in message
    assert "prefect deploy would drop the key" in message


def test_a_templated_schedule_active_is_kept_for_resolution_and_plain_text_must_read_as_a_boolean() -> None:
    schedules = [{"cron": "0 6 * * *", "active": "{{ flag.stdout }}"}, {"interval": 60, "active": "false"}]
    steps = [{"prefect.deployments.steps.run_shell_script": {"id": "flag", "script": "echo false"}}]
    (planned,) = plan({"name": "x", "entrypoint": "flows/metadata.py:generate_metadata", "work_pool": POOL,
                       "schedules": schedules, "build": steps})
    assert [s.get("active") for s in layer(planned)["schedules"]] == ["{{ flag.stdout }}", False]
    message = refusal({"name": "x", "entrypoint": "flows/metadata.py:generate_metadata", "work_pool": POOL,
                       "schedules": [{"cron": "0 6 * * *", "active": "sometimes"}]})
    assert "'sometimes' is not a boolean (true or false) nor a template" in message


def desired_of(**job_variables: Any) -> Desired:
    spec = {"version": "{{ build-image.tag }}", "job_variables": job_variables, "pull_steps": None}
    return Desired("app", "f", "dev", "http://x/api", spec=spec, native=True, runtime={"image_steps": ["build-image"]})


def test_every_output_of_a_replaced_build_step_is_the_image_stages_image() -> None:  # as en_banc writes it
    image = "reg:5001/team/app@sha256:abc"
    done = with_runtime(desired_of(image="{{ build-image.image_name }}:{{ build-image.tag }}", env={"IMG": "{{ build-image.image }}"}),
                        "docker", "/opt/prefect/app", image, "1.2.0-python3.12")
    assert done.spec["version"] == "1.2.0-python3.12"
    assert done.spec["job_variables"] == {"image": "reg:5001/team/app:1.2.0-python3.12", "env": {"IMG": image}}
    process = with_runtime(desired_of(), "process", "/srv/flows", "reg:5001/team/app:1.2.0", None)
    assert process.spec["version"] == "1.2.0" and process.spec["job_variables"] == {}, "a process pool needs no image"


def test_a_replaced_build_steps_output_is_never_written_as_a_template() -> None:
    with pytest.raises(ForkflowError, match=r"\{\{ build-image.tag \}\} name the image of a Docker build step"):
        with_runtime(desired_of(), "process", "/srv/flows", None, None)
    with pytest.raises(ForkflowError, match=r"\{\{ build-image.image_id \}\} name an output the image stage does not give"):
        with_runtime(desired_of(image="{{ build-image.image_id }}"), "docker", "/opt", "reg/app:1", None)


WRAPPER = '''from prefect import flow as prefect_flow

DEFAULT_TIMEOUT = 3600


def flow(*args, timeout_seconds=DEFAULT_TIMEOUT, **kwargs):
    return prefect_flow(*args, timeout_seconds=timeout_seconds, **kwargs)


task_flow = prefect_flow
'''


def test_a_flow_decorated_with_the_projects_own_flow_is_found() -> None:  # as RJ-SMTR's 99 pipelines write it
    from tasks.core.local_modules import local_modules

    sources = {
        "pipelines/common/utils/prefect.py": WRAPPER,
        "pipelines/capture__gtfs/flow.py": "from pipelines.common.utils.prefect import flow\n\n"
                                           "@flow(log_prints=True, timeout_seconds=7200)\nasync def capture__gtfs():\n    pass\n",
        "pipelines/capture__gtfs/other.py": "from ..common.utils.prefect import task_flow as tf\n\n"
                                            "@tf(name='by alias')\ndef other():\n    pass\n",
        "src/pkg/jobs.py": "from pkg.tools import flow\n\n@flow\ndef job():\n    pass\n",
        "src/pkg/tools.py": WRAPPER,
        "pipelines/plain.py": "def flow(f):\n    return f\n\n@flow\ndef not_a_flow():\n    pass\n",
    }
    local = local_modules(sources)
    found = {file: [f.name for f in discover_source(text, file, local)[0]] for file, text in sources.items()}
    assert found["pipelines/capture__gtfs/flow.py"] == ["capture--gtfs"]
    assert found["pipelines/capture__gtfs/other.py"] == ["by alias"], "a relative import of an assigned alias"
    assert found["src/pkg/jobs.py"] == ["job"], "a package in the src layout, imported by its own name"
    assert found["pipelines/plain.py"] == [], "a local decorator that is not Prefect's"


def test_a_flow_name_from_a_constant_of_the_projects_own_module_is_read() -> None:  # as 9MRTAE's ingest flows
    from tasks.core.local_modules import local_modules

    sources = {
        "config_flows/__init__.py": 'APPLICATION_NAME = "ingest_cloudcost"\nCHANGING = "a"\nCHANGING = "b"\n',
        "flows/awscost.py": "from prefect import flow\nfrom config_flows import APPLICATION_NAME, CHANGING\n\n"
                            'v_flow_name = f"{APPLICATION_NAME}_awscost_2ingest"\n\n'
                            "@flow(name=v_flow_name)\ndef awscost():\n    pass\n\n@flow(name=CHANGING)\ndef other():\n    pass\n",
        "flows/local.py": "from prefect import flow\nfrom config_flows import APPLICATION_NAME\n"
                          'APPLICATION_NAME = "mine"\n\n@flow(name=APPLICATION_NAME)\ndef mine():\n    pass\n',
    }
    local = local_modules(sources)
    flows, errors = discover_source(sources["flows/awscost.py"], "flows/awscost.py", local)
    assert [f.name for f in flows] == ["ingest_cloudcost_awscost_2ingest"]
    assert ["CHANGING is not a module-level constant" in str(e) for e in errors] == [True], "bound twice there: not static"
    assert [f.name for f in discover_source(sources["flows/local.py"], "flows/local.py", local)[0]] == ["mine"]


def test_a_wrapper_that_sets_the_name_or_a_constant_bound_in_a_branch_is_not_read_as_static() -> None:
    from tasks.core.local_modules import local_modules

    sources = {
        "common/rename.py": "from prefect import flow as pf\n\ndef flow(*a, name=None, **kw):\n"
                            "    return pf(*a, name=f'rj-{name}', **kw)\n",
        "common/cfg.py": "import os\nNAME = 'base'\nif os.getenv('PROD'):\n    NAME = 'prod'\nSTABLE = 'stable'\n",
        "jobs/etl.py": "from common.rename import flow\n\n@flow(name='etl')\ndef etl():\n    pass\n",
        "jobs/named.py": "from prefect import flow\nfrom common.cfg import NAME, STABLE\n\n@flow(name=NAME)\ndef a():\n    pass\n\n"
                         "@flow(name=STABLE)\ndef b():\n    pass\n",
    }
    local = local_modules(sources)
    assert discover_source(sources["jobs/etl.py"], "jobs/etl.py", local)[0] == [], "Prefect names it rj-etl"
    flows, errors = discover_source(sources["jobs/named.py"], "jobs/named.py", local)
    assert [f.name for f in flows] == ["stable"] and ["NAME is not a module-level constant" in str(e) for e in errors] == [True]


def test_a_schedule_active_from_a_server_variable_is_a_boolean_once_resolved() -> None:
    from tasks.core.deploydefs import native_schedule, with_schedules_active
    from tasks.core.prefect_templates import Reference, fill_references

    templated = native_schedule({"cron": "0 6 * * *", "active": "{{ prefect.variables.on_in_prod }}"}, True)
    assert templated["active"] == "{{ prefect.variables.on_in_prod }}", "kept until the server answers"
    assert native_schedule({"cron": "0 6 * * *", "active": "{{ prefect.variables.on_in_prod }}"}, False)["active"] is False
    spec = {"schedules": [templated]}
    for value, active in (("false", False), (True, True), ("on", True)):
        resolved = fill_references(spec, {Reference("variable", ("on_in_prod",)): value})
        assert with_schedules_active(resolved)["schedules"][0]["active"] is active
    with pytest.raises(ConfigError, match=r"schedule cron '0 6 \* \* \*': active is 'maybe', which is not a boolean"):
        with_schedules_active(fill_references(spec, {Reference("variable", ("on_in_prod",)): "maybe"}))


def test_templated_schedule_values_are_checked_once_each_environment_fills_them() -> None:
    """As prefect deploy resolves `{{ $VAR }}` in a schedule before building it; the rest is checked at once."""
    from tasks.core.deploydefs import desired_from
    from tasks.core.deployment import Context, EnvironmentSettings

    schedules = [{"cron": "{{ $CRON }}", "timezone": "{{ $TZ }}"}, {"interval": "{{ $EVERY }}", "active": False}]
    (planned,) = plan({"name": "x", "entrypoint": "flows/metadata.py:generate_metadata", "work_pool": POOL,
                       "schedules": schedules})
    ctx = Context(project="p", branch="main", commit="0" * 40, version="1")

    def env(**variables: str) -> EnvironmentSettings:
        return EnvironmentSettings("dev", "http://x/api", None, None, None, variables=variables)

    spec = desired_from(planned, env(CRON="0 6 * * *", TZ="Europe/Berlin", EVERY="PT1H"), ctx).spec
    assert [(s["schedule"], s["active"]) for s in spec["schedules"]] == [
        ({"cron": "0 6 * * *", "timezone": "Europe/Berlin", "day_or": True}, True),
        ({"interval": 3600.0, "timezone": "UTC"}, False)]
    with pytest.raises(ConfigError, match=r"a schedule, once its templates are filled, is not one Prefect accepts: "
                                          r"cron: bad cron '61 \* \* \* \*'"):
        desired_from(planned, env(CRON="61 * * * *", TZ="UTC", EVERY="60"), ctx)
    assert "timezone: unknown timezone 'Mars/Olympus'" in refusal(
        {"name": "x", "entrypoint": "flows/metadata.py:generate_metadata", "work_pool": POOL,
         "schedules": [{"cron": "{{ $CRON }}", "timezone": "Mars/Olympus"}]}), "what is not templated is checked at once"
