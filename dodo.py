"""forkflow's task manifest: `doit list` shows every task.

The config is loaded here, before any task runs, so a bad pipeline.toml
stops the run with exit code 2 and one clear message.
"""

import os
import sys

from tasks.core.errors import ConfigError
from tasks.core.stages import configured_stages

try:
    from tasks.pipeline.settings import settings

    SETTINGS = settings()
    SETTINGS.state_dir.mkdir(parents=True, exist_ok=True)
except ConfigError as err:
    from tasks.core.secrets import mask_urls

    print(f"forkflow: {mask_urls(str(err))}", file=sys.stderr)
    sys.exit(err.exit_code)

from tasks.core.errors import StateLocked  # noqa: E402
from tasks.pipeline.lock import READ_ONLY_COMMANDS, command_of, hold_state_lock, named_tasks, runs_tasks, worker_processes  # noqa: E402

if "--dry-run" in sys.argv[1:]:
    from tasks.pipeline.actions import DRY_RUN_ENV

    # the one dry-run switch: `--dry-run` anywhere on the command line (also a group's, as in
    # `doit image --dry-run`) makes every task of the run a dry run, as FORKFLOW_DRY_RUN=1 does
    os.environ[DRY_RUN_ENV] = "1"

if command_of(sys.argv) == "run" and not named_tasks(sys.argv):
    from tasks.core.stages import planned_only
    from tasks.pipeline.actions import PLAN_ONLY_ENV, plan_only_note

    PLANNED = planned_only(SETTINGS.config)
    if PLANNED:
        os.environ[PLAN_ONLY_ENV] = ",".join(PLANNED)
        print(plan_only_note(PLANNED), flush=True)

if command_of(sys.argv) == "forget":
    from tasks.pipeline.checks import record_forgets

    record_forgets()  # forkflow's own up-to-date checks forget what doit forgets

if command_of(sys.argv) not in READ_ONLY_COMMANDS:
    try:
        hold_state_lock(SETTINGS.state_dir)
    except StateLocked as err:
        print(f"forkflow: {err}", file=sys.stderr)
        sys.exit(err.exit_code)

if command_of(sys.argv) not in READ_ONLY_COMMANDS:  # under the state lock: doit's database heals itself
    from tasks.pipeline.statedb import heal_doit_db, keep_summary_when_save_fails

    heal_doit_db(SETTINGS.state_dir / "doit.db")
    keep_summary_when_save_fails()

if runs_tasks(sys.argv) and worker_processes(sys.argv) == 1:
    # the checks' questions go out now (answers held in this process, so not for forked workers)
    from tasks.early import send_early_questions

    send_early_questions(SETTINGS, named_tasks(sys.argv) or configured_stages(SETTINGS.config))

from tasks.pipeline.reporter import LiveSummaryReporter, SummaryReporter  # noqa: E402
from tasks.stages.checkout import task_checkout  # noqa: E402
from tasks.stages.demo import task_demo  # noqa: E402
from tasks.stages.deploy.promote import task_promote  # noqa: E402
from tasks.stages.deploy.stage import task_deploy  # noqa: E402
from tasks.stages.doctor import task_doctor  # noqa: E402
from tasks.stages.flows import task_flows  # noqa: E402
from tasks.stages.image.stage import task_image, task_image_base  # noqa: E402
from tasks.stages.matrix import task_matrix  # noqa: E402
from tasks.stages.notes import task_notes  # noqa: E402
from tasks.stages.pins import task_pins  # noqa: E402
from tasks.stages.publish import task_publish  # noqa: E402
from tasks.stages.services import task_services, task_services_status, task_services_stop  # noqa: E402
from tasks.stages.sync.stage import task_sync  # noqa: E402
from tasks.stages.ui import task_ui  # noqa: E402
from tasks.stages.verify import task_verify  # noqa: E402
from tasks.stages.version import task_check_version, task_version  # noqa: E402
from tasks.stages.wheel import task_wheel  # noqa: E402
from tasks.stages.workflows import task_workflows  # noqa: E402

DOIT_CONFIG = {
    "dep_file": str(SETTINGS.state_dir / "doit.db"),
    "backend": "sqlite3",
    "reporter": LiveSummaryReporter if worker_processes(sys.argv) == 1 else SummaryReporter,
    "verbosity": 2,
    "action_string_formatting": "new",
    # `doit` with no arguments runs the whole pipeline: every stage the config feeds, in order.
    "default_tasks": configured_stages(SETTINGS.config),
}

__all__ = ["task_checkout", "task_demo", "task_doctor", "task_services", "task_services_status", "task_services_stop",
           "task_version", "task_check_version", "task_ui", "task_wheel", "task_verify", "task_pins", "task_publish",
           "task_notes", "task_sync",
           "task_flows", "task_deploy", "task_promote", "task_image", "task_image_base",
           "task_matrix", "task_workflows"]
