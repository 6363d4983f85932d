"""Secrets never shown: values of the secret variables, and credentials written into URLs."""

from __future__ import annotations

import pytest

from tasks.core.secrets import mask, mask_urls


@pytest.mark.parametrize(("text", "shown"), [
    ("https://user:pa55@github.com/o/r.git", "https://user:********@github.com/o/r.git"),
    ("https://ghp_abc123@github.com/o/r", "https://********@github.com/o/r"),
    ("fatal: unable to access 'https://x-access-token:tok@github.com/o/r/'",
     "fatal: unable to access 'https://x-access-token:********@github.com/o/r/'"),
    ("http://u:@host/", "http://u:********@host/"),
    ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("http://127.0.0.1:8081/simple and mail me@example.com", "http://127.0.0.1:8081/simple and mail me@example.com"),
    ("two: https://a:b@h1/ https://c:d@h2/", "two: https://a:********@h1/ https://c:********@h2/"),
])
def test_credentials_in_urls_are_masked(text: str, shown: str) -> None:
    assert mask_urls(text) == shown


def test_mask_hides_secret_values_and_url_credentials() -> None:
    assert mask("token s3cr3t at https://me:s3cr3t@h/", ["s3cr3t"]) == "token ******** at https://me:********@h/"
