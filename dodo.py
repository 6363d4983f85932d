"""forkflow's task manifest: `doit list` shows every task.

The config is loaded here, before any task runs, so a bad pipeline.toml
stops the run with exit code 2 and one clear message.
"""

import os
import sys

from tasks.core.errors import ConfigError
from tasks.core.stages import configured_stages
from tasks.pipeline.interrupt import one_line_on_interrupt

one_line_on_interrupt()

try:
    from tasks.pipeline.settings import settings

    SETTINGS = settings()
    SETTINGS.state_dir.mkdir(parents=True, exist_ok=True)
except ConfigError as err:
    from tasks.core.secrets import mask_urls

    print(f"forkflow: {mask_urls(str(err))}", file=sys.stderr)
    sys.exit(err.exit_code)

from tasks.core.errors import StateLocked  # noqa: E402
from tasks.core.stages import planned_only  # noqa: E402
from tasks.pipeline.lock import hold_state_lock  # noqa: E402
from tasks.pipeline.runmode import install, read_run_mode  # noqa: E402

try:
    # what this run is (command, tasks, dry run, plan only, workers), parsed once as doit parses it
    MODE = read_run_mode(sys.argv[1:], os.environ, planned_only(SETTINGS.config))
except ConfigError as err:
    print(f"forkflow: {err}", file=sys.stderr)
    sys.exit(err.exit_code)
install(MODE)

if MODE.planned:
    from tasks.pipeline.actions import plan_only_note

    print(plan_only_note(list(MODE.planned)), flush=True)

if MODE.command == "forget":
    from tasks.pipeline.checks import record_forgets

    record_forgets()  # forkflow's own up-to-date checks forget what doit forgets

if MODE.executes:
    try:
        hold_state_lock(SETTINGS.state_dir)
    except StateLocked as err:
        print(f"forkflow: {err}", file=sys.stderr)
        sys.exit(err.exit_code)

if MODE.runs_tasks and MODE.workers == 1:
    # the checks' questions go out first (answers held in this process, so not for worker processes)
    from tasks.early import send_early_questions

    send_early_questions(SETTINGS, list(MODE.tasks) or configured_stages(SETTINGS.config))

if MODE.executes:  # under the state lock: doit's database heals itself
    from tasks.pipeline.statedb import heal_doit_db, keep_summary_when_save_fails

    heal_doit_db(SETTINGS.state_dir / "doit.db")
    from tasks.pipeline.heal import remove_dead_temporaries

    remove_dead_temporaries(SETTINGS.state_dir)  # half-written files of a run killed while writing
    keep_summary_when_save_fails()

from tasks.pipeline.reporter import LiveSummaryReporter, SummaryReporter  # noqa: E402
from tasks.stages.checkout import task_checkout  # noqa: E402
from tasks.stages.demo import task_demo  # noqa: E402
from tasks.stages.deploy.promote import task_promote  # noqa: E402
from tasks.stages.deploy.stage import task_deploy  # noqa: E402
from tasks.stages.doctor import task_doctor  # noqa: E402
from tasks.stages.flows import task_flows  # noqa: E402
from tasks.stages.github_release import task_release_github, task_release_inputs  # noqa: E402
from tasks.stages.github_sync import task_sync_github  # noqa: E402
from tasks.stages.image.stage import task_image, task_image_base, task_image_join  # noqa: E402
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
    "reporter": LiveSummaryReporter if MODE.workers == 1 else SummaryReporter,
    "verbosity": 2,
    "action_string_formatting": "new",
    # `doit` with no arguments runs the whole pipeline: every stage the config feeds, in order.
    "default_tasks": configured_stages(SETTINGS.config),
}

__all__ = ["task_checkout", "task_demo", "task_doctor", "task_services", "task_services_status", "task_services_stop",
           "task_version", "task_check_version", "task_ui", "task_wheel", "task_verify", "task_pins", "task_publish",
           "task_notes", "task_sync", "task_sync_github", "task_release_github", "task_release_inputs",
           "task_flows", "task_deploy", "task_promote", "task_image", "task_image_base",
           "task_image_join", "task_matrix", "task_workflows"]
