"""Test helpers (not part of orbit-client)."""
