"""forkflow's task manifest: `doit list` shows every task.

The config is loaded here, before any task runs, so a bad pipeline.toml
stops the run with exit code 2 and one clear message.
"""

import os
import sys

from tasks.core.config import configured_stages
from tasks.core.errors import ConfigError

try:
    from tasks.context import settings

    SETTINGS = settings()
    SETTINGS.state_dir.mkdir(parents=True, exist_ok=True)
except ConfigError as err:
    from tasks.core.secrets import mask_urls

    print(f"forkflow: {mask_urls(str(err))}", file=sys.stderr)
    sys.exit(err.exit_code)

from tasks.core.errors import ForkflowError  # noqa: E402
from tasks.lock import READ_ONLY_COMMANDS, command_of, hold_state_lock, named_tasks, runs_tasks, worker_processes  # noqa: E402

if command_of(sys.argv) == "run" and not named_tasks(sys.argv):
    from tasks.actions import PLAN_ONLY_ENV, plan_only_note
    from tasks.core.config import planned_only

    PLANNED = planned_only(SETTINGS.config)
    if PLANNED:
        os.environ[PLAN_ONLY_ENV] = ",".join(PLANNED)
        print(plan_only_note(PLANNED), flush=True)

if command_of(sys.argv) == "forget":
    from tasks.checks import record_forgets

    record_forgets()  # forkflow's own up-to-date checks forget what doit forgets

if command_of(sys.argv) not in READ_ONLY_COMMANDS:
    try:
        hold_state_lock(SETTINGS.state_dir)
    except ForkflowError as err:
        print(f"forkflow: {err}", file=sys.stderr)
        sys.exit(3)

if runs_tasks(sys.argv) and worker_processes(sys.argv) == 1:
    # the checks' questions go out now (answers held in this process, so not for forked workers)
    from tasks.prefetch import send_early_questions

    send_early_questions(SETTINGS, named_tasks(sys.argv) or configured_stages(SETTINGS.config))

from tasks.checkout import task_checkout  # noqa: E402
from tasks.demo import task_demo  # noqa: E402
from tasks.deploy import task_deploy  # noqa: E402
from tasks.doctor import task_doctor  # noqa: E402
from tasks.flows import task_flows  # noqa: E402
from tasks.image import task_image, task_image_base  # noqa: E402
from tasks.matrix import task_matrix  # noqa: E402
from tasks.promote import task_promote  # noqa: E402
from tasks.publish import task_publish  # noqa: E402
from tasks.reporting import LiveSummaryReporter, SummaryReporter  # noqa: E402
from tasks.services import task_services, task_services_status, task_services_stop  # noqa: E402
from tasks.sync import task_sync  # noqa: E402
from tasks.verify import task_verify  # noqa: E402
from tasks.version import task_check_version, task_version  # noqa: E402
from tasks.wheel import task_wheel  # noqa: E402
from tasks.workflows import task_workflows  # noqa: E402

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
           "task_version", "task_check_version", "task_wheel", "task_verify", "task_publish", "task_sync",
           "task_flows", "task_deploy", "task_promote", "task_image", "task_image_base",
           "task_matrix", "task_workflows"]
