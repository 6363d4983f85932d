"""Thin adapter over a Prefect server's REST API."""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from tasks.adapters.kept_http import Reply

    Answer = httpx.Response | Reply  # an answer of either transport: status_code, headers, json(), text, url

from tasks.adapters.console import say
from tasks.adapters.http_import import load_httpx
from tasks.adapters.limits import limits
from tasks.adapters.prefect_settings import Connection, connect
from tasks.core.errors import ForkflowError
from tasks.core.http_status import status_fix

CREDENTIALS = ("PREFECT_API_KEY or PREFECT_API_AUTH_STRING (environment variables; or the variables the "
               "environment's api_key_env / auth_string_env name), for the prefect_api_url in pipeline.toml")

def client(api_url: str, timeout: float | None = None, connection: Connection | None = None) -> httpx.Client:
    """An httpx client of the API; each request is bounded by [timeouts] prefect unless `timeout` says otherwise."""
    load_httpx()
    import httpx

    found = connection or connect(api_url)
    return httpx.Client(base_url=found.api_url + "/", headers=found.headers, timeout=timeout or limits().prefect,
                        verify=tls_verify_of(found))


def tls_verify_of(connection: Connection) -> bool | str:
    """The connection's TLS verification; a plain-http server gets none (loading the CA bundle for a connection
    that never uses TLS costs a tenth of a second)."""
    return connection.verify if connection.api_url.startswith("https:") else False


def ensure_work_pool(api_url: str, name: str, pool_type: str = "process", dry_run: bool = False,
                     connection: Connection | None = None) -> str:
    """Create the work pool if missing; return 'exists', 'created' or 'would create'."""
    with client(api_url, connection=connection) as http:
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


def api_error(action: str, name: str, response: Answer) -> ForkflowError:
    return ForkflowError(
        f"Prefect API: could not {action}{' ' + repr(name) if name else ''}: HTTP {response.status_code}: "
        f"{readable(response)}",
        where=str(response.url),
        fix=status_fix(response.status_code, "the Prefect server", CREDENTIALS,
                       "the server refused the value named above; correct it in the deployment config"),
    )


def readable(response: Answer) -> str:
    """The server's reason in words: a 422's field errors one by one, never the raw JSON body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    details = body.get("exception_detail") if isinstance(body, dict) else None
    if isinstance(details, list) and details:
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []) if p != 'body')}: {d.get('msg')}" for d in details[:5])
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:300]
    return response.text[:300]


RETRY_STATUSES = (429, 503)
PAGE = 200
EDITED_PAGE = 20  # deployments edited since the last deploy: usually one, read newest first


class Gate:
    """Bounds the requests in flight: starts at one and widens one at a time while requests succeed
    (up to `ceiling`), halves the bound when the server pushes back (429, 503, dropped connections)
    and never widens again to a bound the server pushed back at. A SQLite server refuses concurrent
    writers with 503: the bound settles at one after a single refusal, instead of a burst of refused
    requests whose retries leave the server idle; a PostgreSQL server takes the full ceiling."""

    def __init__(self, ceiling: int):
        self.ceiling = max(1, ceiling)
        self.limit = 1
        self.in_flight = 0
        self.calm = 0
        self.cond = threading.Condition()

    def __enter__(self) -> Gate:
        with self.cond:
            while self.in_flight >= self.limit:
                self.cond.wait()
            self.in_flight += 1
        return self

    def __exit__(self, *_: Any) -> None:
        with self.cond:
            self.in_flight -= 1
            self.cond.notify_all()

    def push_back(self) -> None:
        with self.cond:
            self.ceiling = max(1, min(self.ceiling, self.limit - 1))
            self.limit = max(1, self.limit // 2)
            self.calm = 0

    def success(self) -> None:
        with self.cond:
            self.calm += 1
            if self.limit < self.ceiling and self.calm >= 4 * self.limit:
                self.limit += 1
                self.calm = 0
                self.cond.notify_all()


class PrefectApi:
    """One Prefect server: bulk reads, writes that honour 429 Retry-After, a dry-run path, a write count.

    Safe to share between threads; at most `concurrency` requests are in flight, fewer while the
    server pushes back. Every request forkflow makes is safe to repeat (creates are upserts by
    name, deletes accept 404), so dropped connections are retried too.
    """

    def __init__(self, api_url: str, *, dry_run: bool = False, concurrency: int = 8,
                 max_retries: int = 10, timeout: float | None = None, connection: Connection | None = None,
                 total_timeout: float | None = None):
        self.connection = connection or connect(api_url)
        self.api_url = self.connection.api_url
        self.total_timeout = total_timeout or limits().prefect
        timeout = min(timeout or self.total_timeout, self.total_timeout)
        self.csrf_headers: dict[str, str] | None = None if self.connection.csrf else {}
        self.dry_run = dry_run
        self.max_retries = max_retries
        self.writes = 0
        self.retried = 0
        self._lock = threading.Lock()
        self.gate = Gate(concurrency)
        self.http, self.dropped = transport(self.connection, timeout, concurrency)

    def __enter__(self) -> PrefectApi:
        return self

    def __exit__(self, *_: Any) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: Any = None, *, what: str, ok: tuple[int, ...] = ()) -> Answer:
        """One request; waits out 429/503 (Retry-After) and dropped connections within `total_timeout`
        seconds, raises a ForkflowError otherwise."""
        started = time.monotonic()
        headers = self.csrf(method)
        for attempt in range(self.max_retries + 1):
            left = self.total_timeout - (time.monotonic() - started)
            response, dropped = self.attempt(method, path, body, headers, timeout=max(left, 0.1))
            if response is not None and response.status_code not in RETRY_STATUSES:
                self.gate.success()
                break
            wait = retry_after(response, attempt)
            if attempt == self.max_retries or time.monotonic() - started + wait > self.total_timeout:
                break
            self.gate.push_back()
            with self._lock:
                self.retried += 1
            time.sleep(wait)
        if response is None:
            raise ForkflowError(f"the Prefect API at {self.api_url} did not answer within {self.total_timeout:g} s "
                                f"(could not {what}: {type(dropped).__name__})",
                                where=f"{self.api_url}/{path}; prefect_api_url of the environment, the bound is "
                                      "[timeouts] prefect in pipeline.toml",
                                fix="check that the server runs (doit services) and prefect_api_url is right; if it is "
                                    f"only slow, raise [timeouts] prefect (now {self.total_timeout:g} s)")
        if method != "GET" and not path.endswith(("/filter", "/count", "/paginate")):
            with self._lock:
                self.writes += 1
        if response.status_code >= 400 and response.status_code not in ok:
            raise api_error(what, "", response)
        return response

    def attempt(self, method: str, path: str, body: Any, headers: dict[str, str] | None = None,
                timeout: float | None = None) -> tuple[Answer | None, Exception | None]:
        with self.gate:
            try:
                bound = None if timeout is None else min(timeout, self.total_timeout)
                return self.http.request(method, path, json=body, headers=headers, timeout=bound), None
            except self.dropped as err:
                return None, err

    def csrf(self, method: str) -> dict[str, str]:
        """Prefect's CSRF token for writes, fetched once; {} when the server does not ask for one."""
        if method == "GET" or self.csrf_headers is not None:
            return self.csrf_headers or {}
        import uuid

        with self._lock:
            if self.csrf_headers is None:
                client_id = str(uuid.uuid4())
                found, _ = self.attempt("GET", f"csrf-token?client={client_id}", None)
                token = found.json().get("token") if found is not None and found.status_code == 200 else None
                self.csrf_headers = {"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": client_id} if token else {}
        return self.csrf_headers

    def ready_to_write(self) -> None:
        """Ask for the CSRF token writes need (when the server asks for one) now, beside other reads, rather than
        before the first write; nothing in a dry run."""
        if not self.dry_run:
            self.csrf("POST")

    def dry_run_says(self, message: str) -> bool:
        """In dry-run mode, report the write and return True (the caller then skips it)."""
        if self.dry_run:
            with self._lock:
                say(f"would {message}")
        return self.dry_run

    def work_pools(self) -> dict[str, dict[str, Any]]:
        """Work pools by name, with their type and base job template."""
        pools = self.call("POST", "work_pools/filter", {}, what="list work pools").json()
        return {pool["name"]: pool for pool in pools}

    def read_deployments(self, *, name_like: str | None = None, names: list[str] | None = None) -> list[dict[str, Any]]:
        """All deployments whose name contains `name_like` (or is in `names`), page by page."""
        name_filter: dict[str, Any] = {"any_": names} if names is not None else {"like_": name_like or ""}
        found: list[dict[str, Any]] = []
        while True:
            body = {"deployments": {"name": name_filter}, "limit": PAGE, "offset": len(found), "sort": "NAME_ASC"}
            page = self.call("POST", "deployments/filter", body, what="read deployments").json()
            found += page
            if len(page) < PAGE:
                return found

    def deployment_signals(self, name_like: str) -> dict[str, Any]:
        """How many deployments contain `name_like` in their name, and the latest `updated` among them."""
        body = {"deployments": {"name": {"like_": name_like}}, "sort": "UPDATED_DESC", "limit": 1, "page": 1}
        page = self.call("POST", "deployments/paginate", body, what="read the latest deployment").json()
        return {"count": page["count"], "latest": page["results"][0]["updated"] if page["results"] else None}

    def updated_since(self, name_like: str, since: str) -> list[dict[str, Any]]:
        """The deployments containing `name_like` updated after `since` (the latest `updated` the server gave before),
        newest first: pages sorted by `updated` until one holds an older deployment."""
        from datetime import datetime

        oldest = datetime.fromisoformat(since)
        found: list[dict[str, Any]] = []
        number = 1
        while True:
            body = {"deployments": {"name": {"like_": name_like}}, "sort": "UPDATED_DESC", "limit": EDITED_PAGE,
                    "page": number}
            page = self.call("POST", "deployments/paginate", body, what="read the deployments edited since").json()
            newer = [item for item in page["results"] if datetime.fromisoformat(item["updated"]) > oldest]
            found += newer
            if len(newer) < len(page["results"]) or number >= int(page.get("pages") or 1):
                return found
            number += 1

    def flow_names(self, flow_ids: list[str]) -> dict[str, str]:
        """flow id -> flow name for the given ids."""
        names: dict[str, str] = {}
        unique = sorted(set(flow_ids))
        for start in range(0, len(unique), PAGE):
            body = {"flows": {"id": {"any_": unique[start:start + PAGE]}}, "limit": PAGE}
            for flow in self.call("POST", "flows/filter", body, what="read flows").json():
                names[flow["id"]] = flow["name"]
        return names

    def flow_ids(self, names: list[str]) -> dict[str, str]:
        """flow name -> id for the flows that exist among `names`."""
        ids: dict[str, str] = {}
        unique = sorted(set(names))
        for start in range(0, len(unique), PAGE):
            body = {"flows": {"name": {"any_": unique[start:start + PAGE]}}, "limit": PAGE}
            for flow in self.call("POST", "flows/filter", body, what="read flows").json():
                ids[flow["name"]] = flow["id"]
        return ids

    def ensure_flow(self, name: str) -> str | None:
        """The flow's id, creating the flow when missing (None in dry-run)."""
        if self.dry_run_says(f"create flow {name!r}"):
            return None
        return str(self.call("POST", "flows/", {"name": name}, what=f"create flow {name!r}").json()["id"])

    def create_deployment(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if self.dry_run_says(f"create deployment {body['name']!r}"):
            return None
        created: dict[str, Any] = self.call("POST", "deployments/", body, what=f"create deployment {body['name']!r}").json()
        return created

    def update_deployment(self, deployment_id: str, name: str, changes: dict[str, Any]) -> None:
        if self.dry_run_says(f"update deployment {name!r}: {', '.join(sorted(changes))}"):
            return
        self.call("PATCH", f"deployments/{deployment_id}", changes, what=f"update deployment {name!r}")

    def delete_deployment(self, deployment_id: str, name: str) -> None:
        if self.dry_run_says(f"delete deployment {name!r}"):
            return
        self.call("DELETE", f"deployments/{deployment_id}", what=f"delete deployment {name!r}", ok=(404,))

    def variable(self, name: str) -> Any:
        """A Prefect variable's value; ForkflowError when there is none."""
        found = self.call("GET", f"variables/name/{name}", what=f"read variable {name!r}", ok=(404,))
        if found.status_code == 404:
            raise ForkflowError(f"the Prefect variable {name!r} does not exist on {self.api_url}",
                                where=f"{{{{ prefect.variables.{name} }}}}",
                                fix=f"create it (prefect variable set {name} ...) or change the reference; nothing was deployed")
        return found.json().get("value")

    def block_data(self, block_type: str, name: str) -> dict[str, Any]:
        """A block document's data, secrets included (never printed)."""
        found = self.call("GET", f"block_types/slug/{block_type}/block_documents/name/{name}?include_secrets=true",
                          what=f"read block {block_type}/{name}", ok=(404,))
        if found.status_code == 404:
            raise ForkflowError(f"the Prefect block {block_type}/{name} does not exist on {self.api_url}",
                                where=f"{{{{ prefect.blocks.{block_type}.{name} }}}}",
                                fix="create the block on that server or change the reference; nothing was deployed")
        data: dict[str, Any] = found.json().get("data") or {}
        return data

    def read_automations(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            body = {"limit": PAGE, "offset": len(found)}
            page = self.call("POST", "automations/filter", body, what="read automations").json()
            found += page
            if len(page) < PAGE:
                return found

    def create_automation(self, body: dict[str, Any]) -> None:
        if self.dry_run_says(f"create automation {body.get('name')!r}"):
            return
        self.call("POST", "automations/", body, what=f"create automation {body.get('name')!r}")

    def delete_owned_automations(self, deployment_id: str) -> None:
        """Every automation owned by the deployment (made from its triggers, by forkflow or `prefect deploy`)."""
        if self.dry_run_says(f"delete the automations of deployment {deployment_id}"):
            return
        self.call("DELETE", f"automations/owned-by/prefect.deployment.{deployment_id}",
                  what="delete the deployment's automations", ok=(404,))


def transport(connection: Connection, timeout: float, concurrency: int) -> tuple[Any, tuple[type[Exception], ...]]:
    """What carries the requests, and the errors that mean a dropped connection: kept sockets for a plain-http
    server without a proxy (tasks.adapters.kept_http), else an httpx client."""
    from tasks.adapters import kept_http

    if kept_http.usable_for(connection.api_url):
        return kept_http.KeptConnections(connection.api_url, connection.headers, timeout), (OSError,)
    load_httpx()
    import httpx

    pool = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    client = httpx.Client(base_url=connection.api_url + "/", headers=connection.headers, timeout=timeout, limits=pool,
                          verify=tls_verify_of(connection))
    return UnboundTimeout(client), (httpx.TransportError,)


class UnboundTimeout:
    """An httpx client whose requests take `timeout=None` as "the client's own" (httpx reads None as "none")."""

    def __init__(self, client: httpx.Client):
        self.client = client

    def request(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None,
                timeout: float | None = None) -> httpx.Response:
        import httpx

        bound: Any = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        return self.client.request(method, path, json=json, headers=headers, timeout=bound)

    def close(self) -> None:
        self.client.close()


def retry_after(response: Answer | None, attempt: int) -> float:
    """Seconds to wait: the Retry-After header (seconds or HTTP date), else a jittered backoff from 50 ms
    (Prefect's 503 without Retry-After is a SQLite lock held for milliseconds; a long first wait leaves the
    server idle), doubling to 5 s."""
    header = response.headers.get("retry-after", "").strip() if response is not None else ""
    if header.isdigit():
        return min(float(header), 120.0)
    if header:
        from email.utils import parsedate_to_datetime

        try:
            moment = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            moment = None
        if moment is not None:
            import datetime as dt

            return max(0.0, min((moment - dt.datetime.now(dt.UTC)).total_seconds(), 120.0))
    return min(0.05 * 2.0**attempt * random.uniform(1.0, 1.5), 5.0)
