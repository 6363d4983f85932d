"""Thin adapter over a Prefect server's REST API."""

from __future__ import annotations

import os
from typing import Any

import httpx

from tasks.core.errors import ForkflowError


def auth_headers() -> dict[str, str]:
    """Authorization from PREFECT_API_KEY (Cloud) or PREFECT_API_AUTH_STRING (basic auth)."""
    if os.environ.get("PREFECT_API_KEY"):
        return {"Authorization": f"Bearer {os.environ['PREFECT_API_KEY']}"}
    if os.environ.get("PREFECT_API_AUTH_STRING"):
        import base64

        token = base64.b64encode(os.environ["PREFECT_API_AUTH_STRING"].encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def client(api_url: str, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(base_url=api_url.rstrip("/") + "/", headers=auth_headers(), timeout=timeout)


def ensure_work_pool(api_url: str, name: str, pool_type: str = "process", dry_run: bool = False) -> str:
    """Create the work pool if missing; return 'exists', 'created' or 'would create'."""
    with client(api_url) as http:
        found = http.get(f"work_pools/{name}")
        if found.status_code == 200:
            return "exists"
        if found.status_code != 404:
            raise api_error("read work pool", name, found)
        if dry_run:
            return "would create"
        made = http.post("work_pools/", json={"name": name, "type": pool_type})
        if made.status_code == 409:
            return "exists"
        if made.status_code >= 300:
            raise api_error("create work pool", name, made)
    return "created"


def list_work_pools(api_url: str) -> list[dict[str, Any]]:
    with client(api_url) as http:
        response = http.post("work_pools/filter", json={})
        if response.status_code >= 300:
            raise api_error("list work pools", "", response)
        pools: list[dict[str, Any]] = response.json()
        return pools


def api_error(action: str, name: str, response: httpx.Response) -> ForkflowError:
    return ForkflowError(
        f"Prefect API: could not {action} {name!r}: HTTP {response.status_code} {response.text[:300]}",
        where=str(response.request.url),
        fix="check prefect_api_url and the PREFECT_API_KEY / PREFECT_API_AUTH_STRING variables",
    )
