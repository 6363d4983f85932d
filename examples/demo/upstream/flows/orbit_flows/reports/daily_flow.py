"""A flow declared through `import prefect` and described by a FLOW_SPEC."""

import prefect

FLOW_SPEC = {
    "name": "daily-report",
    "description": "Build the daily report.",
    "tags": ["reports"],
}


@prefect.flow(name="daily-report")
def daily_report(recipients: list[str] = ["ops@example.com"]) -> int:
    return len(recipients)
