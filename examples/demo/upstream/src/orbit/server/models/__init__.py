"""Server database models (removed from orbit-client by the recipe)."""

TABLES = ["flow", "flow_run"]
