"""The GitHub adapter against a local fake of the API: the token only in the Authorization header, GitHub's
refusals and an unreachable API as messages that say what to check, and no token printed."""

from __future__ import annotations

import socket

import pytest

from tasks.adapters.github import GitHub, GitHubError, token_from
from tests.fake_github import fake_github

TOKEN = "ghs_adapter_token_not_for_printing"


def test_calls_carry_the_token_in_the_header_only() -> None:
    with fake_github() as fake, GitHub("acme/orbit", TOKEN, fake.url) as api:
        fake.token = TOKEN
        created = api.create_issue("title", "body", ["a-label"])
        assert [item["number"] for item in api.open_issues("a-label")] == [created["number"]]
        assert api.release_by_tag("1.0.1+orbit.4.gdcb966f") is None, "a missing release is None, not an error"
    assert all(request.authorization == f"Bearer {TOKEN}" for request in fake.requests)
    assert all(TOKEN not in request.path and TOKEN not in str(request.query) for request in fake.requests)
    assert fake.requests[-1].path == "/repos/acme/orbit/releases/tags/1.0.1%2Borbit.4.gdcb966f"


def test_a_refused_token_says_what_to_check_without_showing_it() -> None:
    with fake_github() as fake, GitHub("acme/orbit", TOKEN, fake.url) as api:
        fake.token = "another"
        with pytest.raises(GitHubError) as caught:
            api.create_issue("title", "body", [])
    message = str(caught.value)
    assert "GitHub answered 401: Bad credentials" in message and "POST " in message and "/repos/acme/orbit/issues" in message
    assert "issues: write" in message and TOKEN not in message


def test_an_unreachable_api_names_the_url_to_check() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with GitHub("acme/orbit", TOKEN, f"http://127.0.0.1:{port}") as api, pytest.raises(GitHubError) as caught:
        api.open_pulls("sync/release-20260101", "release")
    assert "GITHUB_API_URL" in str(caught.value) and TOKEN not in str(caught.value)


def test_a_missing_token_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORK_GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(GitHubError) as caught:
        token_from("FORK_GITHUB_TOKEN", "GITHUB_TOKEN")
    assert "FORK_GITHUB_TOKEN, GITHUB_TOKEN" in str(caught.value) and "${{ github.token }}" in str(caught.value)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    assert token_from("FORK_GITHUB_TOKEN", "GITHUB_TOKEN") == TOKEN


def test_open_issues_by_label_or_all_and_never_pull_requests() -> None:
    with fake_github() as fake, GitHub("acme/orbit", TOKEN, fake.url) as api:
        labelled = api.create_issue("a", "body", ["x"])
        plain = api.create_issue("b", "body", [])
        api.create_pull("c", "body", "topic", "main")
        assert [i["number"] for i in api.open_issues("x")] == [labelled["number"]]
        assert sorted(i["number"] for i in api.open_issues()) == [labelled["number"], plain["number"]]
