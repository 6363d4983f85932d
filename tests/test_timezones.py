"""Prefect's schedule checks list the time zones once per forkflow process, and still refuse an unknown one."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from prefect._internal.schemas import validators
from tasks.pipeline.prefect_rules import prefect_models
from tasks.pipeline.deployments import prefect_schedule_problem

calls = []
original = validators.get_timezones
def counted():
    calls.append(1)
    return original()
validators.get_timezones = counted
prefect_models()
for _ in range(50):
    assert prefect_schedule_problem({"cron": "0 6 * * *", "timezone": "Europe/Berlin"}) is None
problem = prefect_schedule_problem({"cron": "0 6 * * *", "timezone": "Europe/Nowhere"})
print(len(calls), problem)
"""


def test_schedule_checks_list_the_time_zones_once_and_still_refuse_an_unknown_zone() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120)
    count, _, problem = done.stdout.strip().partition(" ")
    assert count == "1", done.stdout
    assert 'Invalid timezone: "Europe/Nowhere"' in problem, problem
