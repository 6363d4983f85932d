"""Server API (not part of orbit-client)."""

ROUTES = ["/health"]
