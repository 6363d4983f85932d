"""The GitHub REST API: the few calls forkflow makes (issues, pull requests, releases).

The token comes from the environment (its variable's name is passed in; `GITHUB_TOKEN` by default) and
goes only into the Authorization header: never into a URL, an argument or a message. The API is
`$GITHUB_API_URL` (GitHub Enterprise, or a local server in tests), else https://api.github.com. Every
call has bounded timeouts; a failure says which call, GitHub's answer and what to check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tasks.core.errors import ForkflowError

if TYPE_CHECKING:
    import httpx

DEFAULT_API = "https://api.github.com"
TIMEOUT_SECONDS = 30.0
CONNECT_SECONDS = 10.0
PAGE_SIZE = 100
MAX_PAGES = 10


class GitHubError(ForkflowError):
    """A GitHub API call failed, or cannot be made (no token, no repository)."""


def api_url() -> str:
    return (os.environ.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/")


def token_from(*names: str) -> str:
    """The first of the environment variables `names` that is set; an error naming them all otherwise."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise GitHubError(f"no GitHub token: none of {', '.join(names)} is set", where="the environment",
                      fix=f"set {names[0]} (in a workflow: `{names[0]}: ${{{{ github.token }}}}` in the step's env)")


@dataclass
class GitHub:
    """One repository's issues, pull requests and releases."""

    repository: str
    token: str
    base_url: str = ""

    def __post_init__(self) -> None:
        import httpx

        self.base_url = self.base_url or api_url()
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "forkflow"},
            timeout=httpx.Timeout(TIMEOUT_SECONDS, connect=CONNECT_SECONDS),
            follow_redirects=False,
        )

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def path(self, tail: str) -> str:
        return f"/repos/{self.repository}/{tail}"

    def call(self, method: str, tail: str, *, body: dict[str, Any] | None = None,
             params: dict[str, str] | None = None, missing_ok: bool = False) -> Any:
        """One request; its JSON answer (None for 404 when `missing_ok`)."""
        import httpx

        where = f"{method} {self.base_url}{self.path(tail)}"
        try:
            response = self._http.request(method, self.path(tail), json=body, params=params)
        except httpx.HTTPError as err:
            raise GitHubError(f"GitHub API call failed: {type(err).__name__}: {err}", where=where,
                              fix="check GITHUB_API_URL and the network, then run it again") from None
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise GitHubError(f"GitHub answered {response.status_code}: {answer_message(response)}", where=where,
                              fix=fix_for(response.status_code))
        return response.json() if response.content else None

    def paged(self, tail: str, params: dict[str, str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            items = self.call("GET", tail, params={**params, "per_page": str(PAGE_SIZE), "page": str(page)})
            found.extend(items or [])
            if len(items or []) < PAGE_SIZE:
                break
        return found

    # -- issues --------------------------------------------------------------------------------

    def open_issues(self, label: str | None = None) -> list[dict[str, Any]]:
        """Open issues, with `label` when given (pull requests, which the issues API lists too, left out)."""
        items = self.paged("issues", {"state": "open", **({"labels": label} if label else {})})
        return [item for item in items if "pull_request" not in item]

    def create_issue(self, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        created: dict[str, Any] = self.call("POST", "issues", body={"title": title, "body": body, "labels": labels})
        return created

    def update_issue(self, number: int, **fields: Any) -> dict[str, Any]:
        updated: dict[str, Any] = self.call("PATCH", f"issues/{number}", body=fields)
        return updated

    def comment(self, number: int, body: str) -> None:
        self.call("POST", f"issues/{number}/comments", body={"body": body})

    # -- pull requests -------------------------------------------------------------------------

    def open_pulls(self, head: str, base: str) -> list[dict[str, Any]]:
        """Open pull requests from branch `head` of this repository into `base`."""
        owner = self.repository.split("/", 1)[0]
        return self.paged("pulls", {"state": "open", "head": f"{owner}:{head}", "base": base})

    def create_pull(self, title: str, body: str, head: str, base: str) -> dict[str, Any]:
        created: dict[str, Any] = self.call("POST", "pulls", body={"title": title, "body": body, "head": head,
                                                                   "base": base, "maintainer_can_modify": True})
        return created

    def update_pull(self, number: int, title: str, body: str) -> dict[str, Any]:
        updated: dict[str, Any] = self.call("PATCH", f"pulls/{number}", body={"title": title, "body": body})
        return updated

    # -- releases ------------------------------------------------------------------------------

    def release_by_tag(self, tag: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.call("GET", f"releases/tags/{quote(tag, safe='')}", missing_ok=True)
        return found

    def create_release(self, fields: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.call("POST", "releases", body=fields)
        return created

    def update_release(self, release_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        updated: dict[str, Any] = self.call("PATCH", f"releases/{release_id}", body=fields)
        return updated


def answer_message(response: httpx.Response) -> str:
    """GitHub's `message` (and its first errors), without echoing the request."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if not isinstance(data, dict):
        return str(data)[:200]
    errors = data.get("errors") or []
    details = "; ".join(str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e) for e in errors[:3])
    return str(data.get("message") or response.reason_phrase) + (f" ({details})" if details else "")


def fix_for(status: int) -> str:
    if status in (401, 403):
        return ("check the token and the job's permissions (issues: write for issues, pull-requests: write for "
                "pull requests, contents: write for releases)")
    if status == 404:
        return "check the repository name ([github] repository, $GITHUB_REPOSITORY) and that the token can see it"
    if status == 422:
        return "GitHub refused the content: see its message above"
    return "look at GitHub's status and run it again"
