"""Thin adapter over a Python package index: read its simple API, upload with twine."""

from __future__ import annotations

import base64
import contextlib
import html.parser
import io
import logging
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from urllib.parse import urljoin

from tasks.adapters.limits import limits, no_answer
from tasks.core.errors import ForkflowError
from tasks.core.http_status import is_credentials_status, is_server_failure, status_fix
from tasks.core.packages import canonical
from tasks.core.secrets import Credentials


class IndexError_(ForkflowError):
    """The index refused or failed a request."""


class AuthError(IndexError_):
    """The index refused the credentials."""


class TransientIndexError(IndexError_):
    """A 5xx answer or a dropped connection: worth re-checking and retrying."""


CREDENTIALS = "TWINE_USERNAME / TWINE_PASSWORD (environment variables)"


def read_auth() -> tuple[str, str] | None:
    """What reads send to the index: TWINE_USERNAME / TWINE_PASSWORD when set (a private index wants them to
    list and download too); never sent to another host."""
    password = os.environ.get("TWINE_PASSWORD")
    return (os.environ.get("TWINE_USERNAME") or "forkflow", password) if password else None  # as uploads send them


def status_error(status: int, index_url: str, doing: str) -> IndexError_:
    """The error for an answer other than 200 or 404 while `doing` something on the index."""
    what = f"the index at {index_url} answered {status} while {doing}"
    fix = status_fix(status, "the index", CREDENTIALS, "check [index] url: is it the index's root?")
    where = f"[index] url = {index_url!r}"
    if is_credentials_status(status):
        return AuthError(what, where=where, fix=fix)
    if is_server_failure(status):
        return TransientIndexError(what, where=where, fix=fix)
    return IndexError_(what, where=where, fix=fix)


class LinkParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str | None] = {}
        self.hrefs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if not href:
            return
        url, _, fragment = href.partition("#")
        name = url.rstrip("/").rsplit("/", 1)[-1]
        digest = fragment.split("=", 1)[1] if fragment.startswith("sha256=") else None
        self.links[name] = digest
        self.hrefs[name] = url


def remote_files(index_url: str, project: str) -> dict[str, str | None]:
    """File name -> sha256 (None when the index gives no hash) for one project on the index."""
    return project_page(index_url, project).links


def download(index_url: str, project: str, file_name: str) -> bytes | None:
    """One file of a project as the index serves it; None when the index does not list it."""
    import httpx

    page = project_page(index_url, project)
    if file_name not in page.hrefs:
        return None
    base = f"{index_url.rstrip('/')}/simple/{canonical(project)}/"
    try:
        response = httpx.get(urljoin(base, page.hrefs[file_name]), timeout=limits().index, follow_redirects=True,
                             auth=read_auth())
    except httpx.TimeoutException:
        raise index_silent(index_url) from None
    if response.status_code != 200:
        raise status_error(response.status_code, index_url, f"downloading {file_name}")
    return response.content


def project_page(index_url: str, project: str) -> LinkParser:
    """The parsed simple-API page of one project (empty when the index does not hold it)."""
    import httpx

    url = f"{index_url.rstrip('/')}/simple/{canonical(project)}/"
    try:
        response = httpx.get(url, timeout=limits().index, auth=read_auth())
        target = str(response.next_request.url) if response.is_redirect and response.next_request else ""
        if target and same_origin(url, target):
            response = httpx.get(target, timeout=limits().index, auth=read_auth())
    except httpx.TimeoutException:
        raise index_silent(index_url) from None
    except httpx.TransportError as err:
        raise TransientIndexError(f"cannot reach the package index at {index_url}: {err}",
                                  fix="check [index] url and that the index is running (`doit services`)") from None
    if response.status_code == 404 or response.is_redirect:
        return LinkParser()  # a redirect elsewhere: the index does not hold the project and falls back to upstream
    if response.status_code != 200:
        raise status_error(response.status_code, index_url, f"reading {url}")
    parser = LinkParser()
    parser.feed(response.text)
    return parser


def index_silent(index_url: str) -> TransientIndexError:
    silent = no_answer(f"the package index at {index_url}", "index", limits().index, where="[index] url")
    return TransientIndexError(silent.what, where=silent.where, fix=silent.fix)


@contextlib.contextmanager
def bounded_sockets(seconds: float) -> Iterator[None]:
    """twine's requests carry no timeout of their own: every socket they open waits at most `seconds`."""
    import socket

    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def same_origin(first: str, second: str) -> bool:
    from urllib.parse import urlsplit

    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def upload(index_url: str, file: Path, credentials: Credentials | None) -> None:
    """Upload one file with twine (credentials passed in memory, never on a command line)."""
    import requests
    from twine.commands.upload import upload as twine_upload
    from twine.exceptions import TwineException
    from twine.settings import Settings

    settings = Settings(
        repository_url=index_url.rstrip("/") + "/",
        username=credentials.username if credentials else None,
        password=credentials.password if credentials else None,
        non_interactive=True,
        disable_progress_bar=True,
        config_file="/dev/null",
    )
    logging.getLogger("twine").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), bounded_sockets(limits().index):
            twine_upload(settings, [str(file)])
    except requests.Timeout:
        raise index_silent(index_url) from None
    except requests.HTTPError as err:
        raise http_error(err, index_url, file) from None
    except requests.ConnectionError as err:
        raise TransientIndexError(f"connection to {index_url} failed while uploading {file.name}: "
                                  f"{type(err).__name__}") from None
    except TwineException as err:
        if "credential" in str(err).lower():
            raise AuthError(f"twine has no credentials to upload {file.name} to {index_url}: {err}",
                            where=f"[index] url = {index_url!r}", fix=f"set {CREDENTIALS}") from None
        raise IndexError_(f"twine refused to upload {file.name}: {err}", fix="read the message above") from None


def http_error(err: object, index_url: str, file: Path) -> IndexError_:
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", 0)
    if is_credentials_status(status) or is_server_failure(status):
        return status_error(status, index_url, f"uploading {file.name}")
    return IndexError_(f"the index refused {file.name} with {status}", where=index_url,
                       fix="read the index's log; the file was not uploaded")


def listed_files(index_url: str, projects: list[str]) -> set[str]:
    """Every file name the index lists for `projects`, for an up-to-date check: pypiserver's listing of all its
    files (`/packages/`, one request) when the index has one, else each project's simple page, asked together.
    The standard library only (a check that must ask pays no httpx import); redirects are not followed (a
    project the index does not hold may be sent to another index)."""
    found = listing_page(index_url, f"{index_url.rstrip('/')}/packages/")
    if found is not None:
        return found
    from concurrent.futures import ThreadPoolExecutor

    pages = [f"{index_url.rstrip('/')}/simple/{canonical(project)}/" for project in dict.fromkeys(projects)]
    with ThreadPoolExecutor(max_workers=min(8, len(pages) or 1)) as pool:
        return set().union(*(page or set() for page in pool.map(partial(listing_page, index_url), pages)))


def listing_page(index_url: str, url: str) -> set[str] | None:
    """The file names a page of the index links to; None when the index does not serve that page."""
    from tasks.adapters.plain_http import request

    headers = {}
    auth = read_auth()
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        answer = request(url, headers=headers, timeout=limits().index)
    except TimeoutError:
        raise index_silent(index_url) from None
    except OSError as err:
        raise TransientIndexError(f"cannot reach the package index at {index_url}: {err}",
                                  fix="check [index] url and that the index is running (`doit services`)") from None
    if answer.status in (404, 301, 302, 303, 307, 308):
        return None
    if not answer.ok:
        raise status_error(answer.status, index_url, f"reading {url}") from None
    parser = LinkParser()
    parser.feed(answer.body.decode("utf-8", "replace"))
    return set(parser.links)

