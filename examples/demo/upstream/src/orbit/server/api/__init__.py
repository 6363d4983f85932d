"""Server API schemas: orbit-client keeps them, as prefect-client keeps prefect.server.api."""

ROUTES = ["/health"]
