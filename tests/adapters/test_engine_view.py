"""The engine view's name matching and lookups (tasks.adapters.engine_view), and the registry's tag pages.

The lookups take a listing as the engine's `/images/json` gives it; the real
engine answers them in tests/test_image_checks.py.
"""

from __future__ import annotations

from typing import Any

from tasks.adapters.engine_view import EngineView, familiar
from tasks.adapters.registry import next_page

LISTED: list[dict[str, Any]] = [
    {"Id": "sha256:aaa", "RepoTags": ["python:3.12-slim"], "RepoDigests": ["python@sha256:111"], "Labels": None,
     "Size": 10},
    {"Id": "sha256:bbb", "RepoTags": ["acme/orbit:build-3.12-base-0123456789ab", "127.0.0.1:5001/acme/orbit:1.0.1"],
     "Labels": {"org.forkflow.input-hash": "h1"}, "Size": 20},
]


def view() -> EngineView:
    engine: Any = None  # not asked: every lookup below is answered by the listing
    return EngineView(LISTED, "linux/amd64", engine)


def test_names_are_matched_as_the_engine_lists_them() -> None:
    assert familiar("docker.io/library/python:3.12-slim") == "python:3.12-slim"
    assert familiar("docker.io/acme/orbit") == "acme/orbit:latest"
    assert familiar("127.0.0.1:5001/acme/orbit") == "127.0.0.1:5001/acme/orbit:latest"
    assert familiar("127.0.0.1:5001/acme/orbit:1.0") == "127.0.0.1:5001/acme/orbit:1.0"
    assert familiar("sha256:abc") == "sha256:abc"
    assert familiar("python@sha256:111") == "python@sha256:111"


def test_lookups_answer_from_the_listing() -> None:
    seen = view()
    assert seen.inspect("docker.io/library/python:3.12-slim") == {"Id": "sha256:aaa", "Size": 10,
                                                                  "Config": {"Labels": {}}}
    assert seen.inspect("python@sha256:111") is not None and seen.inspect("sha256:bbb") is not None
    assert seen.inspect("127.0.0.1:5001/acme/orbit:1.0.1") is not None
    assert seen.inspect("python:3.11-slim") is None, "not listed: absent (the check then runs the task)"
    assert seen.labelled("org.forkflow.input-hash", "h1") == ["sha256:bbb"]
    assert seen.labelled("org.forkflow.input-hash", "h2") == []


def test_a_known_base_content_is_not_asked_again() -> None:
    seen = view()
    seen.contents["sha256:aaa"] = "sha256:content"
    assert seen.content("python:3.12-slim") == "sha256:content"
    assert seen.content("python:3.11-slim") is None


def test_the_registry_s_next_page_of_tags() -> None:
    assert next_page('</v2/acme/orbit/tags/list?last=b&n=2>; rel="next"') == "/acme/orbit/tags/list?last=b&n=2"
    assert next_page('<https://r.example/v2/a/tags/list?n=1&last=x>; rel=next') == "/a/tags/list?n=1&last=x"
    assert next_page("") is None
