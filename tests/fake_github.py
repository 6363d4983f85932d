"""A local stand-in for the GitHub REST API: issues, comments, pull requests and releases kept in memory,
every request recorded (method, path, query, JSON body, the Authorization header). Point forkflow at it
with GITHUB_API_URL. It answers the way GitHub does for the calls forkflow makes (404 for a missing
release tag, 422 for a second pull request from the same branch)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str


@dataclass
class FakeGitHub:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    comment_ids: dict[int, tuple[int, int]] = field(default_factory=dict)  # comment id -> (issue or pull, index)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    releases: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_number: int = 1
    token: str | None = None  # when set, any other Authorization gets GitHub's 401

    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if r.method != "GET"]

    def number(self) -> int:
        self.next_number += 1
        return self.next_number - 1

    def answer(self, request: Request) -> tuple[int, Any]:
        if self.token is not None and request.authorization != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        parts = request.path.strip("/").split("/")
        if len(parts) < 4 or parts[0] != "repos":
            return 404, {"message": "Not Found"}
        repo, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        handler = {"issues": self.on_issues, "pulls": self.on_pulls, "releases": self.on_releases}.get(rest[0])
        return handler(request, repo, rest[1:]) if handler else (404, {"message": "Not Found"})

    def on_issues(self, request: Request, repo: str, rest: list[str]) -> tuple[int, Any]:
        if not rest and request.method == "GET":
            label = request.query.get("labels")
            found = [i for i in self.issues.values() if i["repo"] == repo and i["state"] == request.query.get("state", "open")
                     and (label is None or label in [x["name"] for x in i["labels"]])]
            pulls = [{**p, "labels": [], "pull_request": {"url": f"/repos/{repo}/pulls/{p['number']}"}}
                     for p in self.pulls.values() if p["repo"] == repo and p["state"] == "open" and label is None]
            return 200, found + pulls  # GitHub's issues API lists pull requests too
        if not rest and request.method == "POST":
            number = self.number()
            self.issues[number] = {"number": number, "repo": repo, "state": "open", "title": request.body["title"],
                                   "body": request.body["body"],
                                   "labels": [{"name": name} for name in request.body.get("labels", [])]}
            return 201, self.issues[number]
        if "comments" in rest[:2]:
            return self.on_comments(request, rest)
        number = int(rest[0])
        if number not in self.issues:
            return 404, {"message": "Not Found"}
        if request.method == "PATCH":
            self.issues[number].update(request.body)
            return 200, self.issues[number]
        return 404, {"message": "Not Found"}

    def on_comments(self, request: Request, rest: list[str]) -> tuple[int, Any]:
        """/issues/{number}/comments (GET, POST; a pull request's too) and /issues/comments/{id} (PATCH)."""
        if rest[0] == "comments":
            comment_id = int(rest[1])
            if request.method != "PATCH" or comment_id not in self.comment_ids:
                return 404, {"message": "Not Found"}
            number, index = self.comment_ids[comment_id]
            self.comments[number][index] = request.body["body"]
            return 200, {"id": comment_id, "body": request.body["body"]}
        number = int(rest[0])
        if number not in self.issues and number not in self.pulls:
            return 404, {"message": "Not Found"}
        if request.method == "GET":
            return 200, [{"id": cid, "body": self.comments[n][i]} for cid, (n, i) in self.comment_ids.items() if n == number]
        self.comments.setdefault(number, []).append(request.body["body"])
        self.comment_ids[len(self.comment_ids) + 1] = (number, len(self.comments[number]) - 1)
        return 201, {"id": len(self.comment_ids)}

    def on_pulls(self, request: Request, repo: str, rest: list[str]) -> tuple[int, Any]:
        owner = repo.split("/", maxsplit=1)[0]
        if not rest and request.method == "GET":
            head, base = request.query.get("head"), request.query.get("base")
            return 200, [p for p in self.pulls.values() if p["repo"] == repo and p["state"] == "open"
                         and (head is None or f"{owner}:{p['head']}" == head) and (base is None or p["base"] == base)]
        if not rest and request.method == "POST":
            body = request.body
            if any(p["head"] == body["head"] and p["base"] == body["base"] and p["state"] == "open"
                   for p in self.pulls.values()):
                return 422, {"message": "Validation Failed", "errors": [{"message": "A pull request already exists"}]}
            number = self.number()
            self.pulls[number] = {"number": number, "repo": repo, "state": "open", **body}
            return 201, self.pulls[number]
        number = int(rest[0])
        if request.method == "PATCH" and number in self.pulls:
            self.pulls[number].update(request.body)
            return 200, self.pulls[number]
        return 404, {"message": "Not Found"}

    def on_releases(self, request: Request, repo: str, rest: list[str]) -> tuple[int, Any]:
        if rest[:1] == ["tags"] and request.method == "GET":
            tag = unquote(rest[1])
            found = [r for r in self.releases.values() if r["repo"] == repo and r["tag_name"] == tag]
            return (200, found[0]) if found else (404, {"message": "Not Found"})
        if not rest and request.method == "POST":
            if any(r["repo"] == repo and r["tag_name"] == request.body["tag_name"] for r in self.releases.values()):
                return 422, {"message": "Validation Failed", "errors": [{"code": "already_exists"}]}
            number = self.number()
            self.releases[number] = {"id": number, "repo": repo, "html_url": f"https://example.test/releases/{number}",
                                     **request.body}
            return 201, self.releases[number]
        if len(rest) == 1 and request.method == "PATCH" and int(rest[0]) in self.releases:
            self.releases[int(rest[0])].update(request.body)
            return 200, self.releases[int(rest[0])]
        return 404, {"message": "Not Found"}


def handler_for(fake: FakeGitHub, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def handle_any(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(self.command, split.path, {k: v[0] for k, v in parse_qs(split.query).items()},
                              json.loads(raw) if raw else None, self.headers.get("Authorization", ""))
            with lock:
                fake.requests.append(request)
                status, data = fake.answer(request)
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = handle_any  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


@contextmanager
def fake_github() -> Iterator[FakeGitHub]:
    """A FakeGitHub listening on a free port of 127.0.0.1 for the duration of the block."""
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake, threading.Lock()))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
