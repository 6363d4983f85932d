"""publish, verify, pins and notes against faults: each of their reports and state files corrupted, an index that
refuses the credentials, an index that never answers; the rerun completes and uploads nothing twice."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tasks.pipeline.settings import read_json
from tests.helpers import run_doit

GARBAGE = b"\x00\xff{ not json"


def state(config: Path) -> Path:
    return config.parent / ".forkflow"


def on_index(config: Path) -> dict[str, int]:
    """Each file on the local index and its inode: a file uploaded again is a new file."""
    return {p.name: p.stat().st_ino for p in (state(config) / "services" / "index" / "packages").iterdir()}


def clean(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    assert result.returncode == 0, output[-3000:]
    return output


def publish_statuses(config: Path) -> set[str]:
    report = read_json(state(config) / "reports" / "publish.json")
    assert report is not None, "publish.json reads"
    return {entry["status"] for entry in report["files"]}


def notes_statuses(config: Path) -> dict[str, str]:
    report = read_json(state(config) / "reports" / "notes.json")
    assert report is not None, "notes.json reads"
    return {entry["name"]: entry["status"] for entry in report["packages"]}


def test_every_publish_state_file_corrupted_the_rerun_completes(index: Path) -> None:
    reports = state(index) / "reports"
    (reports / "publish.json").unlink(missing_ok=True)
    clean(run_doit(index, "publish", "notes"))
    uploaded = on_index(index)
    assert len(uploaded) == 13 and publish_statuses(index) == {"uploaded"}
    notes = notes_statuses(index)
    assert set(notes.values()) == {"uploaded"}, notes
    per_package = sorted((state(index) / "verify").glob("*.json"))
    assert len(per_package) == 6, per_package
    files = [reports / f"{name}.json" for name in ("verify", "pins", "notes")] + per_package + [reports / "publish.json"]
    for file in files:
        file.write_bytes(GARBAGE)
        output = clean(run_doit(index, "publish", "notes"))
        assert output.count(f"{file} is not readable") == 1, f"{file}:\n{output[-3000:]}"
        assert read_json(file) is not None, f"{file} was not written again"
        assert on_index(index) == uploaded, f"{file}: nothing is uploaded again"
        if file.name != "publish.json":  # a rebuilt publish.json says what its own run uploaded: nothing
            assert notes_statuses(index) == notes, f"{file}: the notes still name what the last upload released"
        again = clean(run_doit(index, "publish", "notes"))
        assert "warning" not in again and "-- publish" in again and "-- notes" in again, f"{file}: advice loop?\n{again}"


def test_an_index_refusing_the_credentials_then_the_right_ones(index: Path) -> None:
    secret = "Wrong-Secret-0b7e41"
    (state(index) / "reports" / "publish.json").unlink(missing_ok=True)
    refused = run_doit(index, "publish", env={"TWINE_USERNAME": "nobody", "TWINE_PASSWORD": secret})
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert "refused the credentials" in output and "TWINE_USERNAME / TWINE_PASSWORD" in output, output[-3000:]
    assert "127.0.0.1" in output and "summary:" in refused.stdout, output[-3000:]
    assert secret not in output and secret not in (state(index) / "reports" / "publish.json").read_text()
    assert on_index(index) == {}, "nothing was uploaded"
    clean(run_doit(index, "publish"))  # the local index's own credentials, from its services folder
    assert len(on_index(index)) == 13 and publish_statuses(index) == {"uploaded"}


def test_publish_to_an_index_that_never_answers_then_completes(index: Path) -> None:
    from tests.hung import hung_listener
    from tests.test_publish import index_url

    real = index_url(index)
    with hung_listener() as port:
        hung = index.parent / "hung.toml"
        hung.write_text(index.read_text().replace(f'url = "{real}', f'url = "http://127.0.0.1:{port}')
                        + "\n[timeouts]\nindex = 2\n")
        result = run_doit(hung, "publish", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert f"the package index at http://127.0.0.1:{port}" in output and "did not answer within 2 s" in output
    assert "raise [timeouts] index" in output and "summary:" in result.stdout, output[-3000:]
    assert on_index(index) == {}
    clean(run_doit(index, "publish"))
    assert len(on_index(index)) == 13 and publish_statuses(index) == {"uploaded"}
    assert "-- publish" in clean(run_doit(index, "publish")), "up to date: nothing uploaded twice"
