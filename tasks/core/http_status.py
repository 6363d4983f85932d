"""What to do about an HTTP status from a package index, registry or Prefect server: fix lines that fix.

A 401 or 403 is about credentials, so its fix names the environment
variables that carry them; a 5xx is the server's own failure, so its fix says
so and that running again is safe (every stage checks what is already there
before it writes, so a rerun never does anything twice).
"""

from __future__ import annotations


def is_credentials_status(status: int) -> bool:
    return status in (401, 403)


def is_server_failure(status: int) -> bool:
    return 500 <= status < 600


def status_fix(status: int, service: str, credentials: str, otherwise: str) -> str:
    """The fix line for `status` from `service`; `credentials` names the variables that carry its credentials."""
    if status == 401:
        return f"{service} refused the credentials (or got none); set {credentials} to valid ones"
    if status == 403:
        return (f"{service} refused the credentials, or their account may not do this; set {credentials} to an "
                "account that is allowed")
    if is_server_failure(status):
        return (f"{service} failed on its side (HTTP {status}), not because of this run; running again is safe "
                "(what is already done is checked, not redone); if it keeps failing, read the server's log")
    return otherwise
