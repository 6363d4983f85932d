"""Server (not part of orbit-client)."""
