"""`tagparse run --backend openai` against a FAKE server that fails on demand (see conftest.py).

A run with faulty captions completes, records each failure per caption, loses nothing, and
`--retry-failed` later re-asks the server for the failed captions only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from llm_cli import run_openai, write_captions_csv

CAPTIONS = [
    "a red bicycle",
    "a sleepy tabby cat",
    "a wooden bench",
    "a yellow taxi",
    "a red bicycle",  # the same caption twice: parsed once
    "a [500x1] rusty anchor",
    "a [dropx1] silver spoon",
    "a [429x1] striped umbrella",
    "an [always500] old clock",
    "a [schema] shiny kettle",
]


def run(url: str, csv_path: Path, db: Path, *extra: str):
    return run_openai(
        url,
        csv_path,
        db,
        "--max-retries",
        "1",
        "--timeout",
        "1",
        "--concurrency",
        "4",
        "--batch-size",
        "4",
        *extra,
    )


def parse_rows(db: Path) -> dict[str, tuple[str, str]]:
    """caption -> (status, error) for every parse in the file."""
    with sqlite3.connect(db) as con:
        return {
            caption: (status, error)
            for caption, status, error in con.execute(
                "SELECT s.caption, p.status, p.error FROM parses p "
                "JOIN samples s ON s.caption_hash = p.caption_hash GROUP BY p.caption_hash"
            )
        }


def test_faults_are_recorded_per_caption_and_retry_failed_reasks_only_those(fake_server, tmp_path):
    csv_path = write_captions_csv(tmp_path / "captions.csv", CAPTIONS)
    db = tmp_path / "tags.db"

    first = run(fake_server.url, csv_path, db)
    assert first.exit_code == 1, first.output  # failures make the exit code non-zero
    assert "parsed 7 · cached 0 · failed 2" in first.output
    rows = parse_rows(db)
    assert len(rows) == 9  # every distinct caption has a parse row: nothing lost
    failed = {c for c, (status, _) in rows.items() if status == "error"}
    assert failed == {"an [always500] old clock", "a [schema] shiny kettle"}
    assert "HTTP 500" in rows["an [always500] old clock"][1]
    assert fake_server.requests["an [always500] old clock"] == 2  # 1 + --max-retries 1
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == len(CAPTIONS)

    fake_server.heal()
    fake_server.requests.clear()
    again = run(fake_server.url, csv_path, db)
    assert again.exit_code == 1 and "failed earlier 2" in again.output
    assert sum(fake_server.requests.values()) == 0  # a plain re-run asks nothing

    retried = run(fake_server.url, csv_path, db, "--retry-failed")
    assert retried.exit_code == 0, retried.output
    assert set(fake_server.requests) == failed  # only the failed captions were asked again
    assert {status for status, _ in parse_rows(db).values()} == {"ok"}


def test_api_key_never_reaches_the_db_or_the_output(make_fake_server, tmp_path, monkeypatch):
    secret = "sk-live-9fQ2NeverStoreMe"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    server = make_fake_server(echo_auth=True)  # its 500 errors quote the Authorization header
    csv_path = write_captions_csv(tmp_path / "c.csv", ["an [always500] old clock", "a red bicycle"])
    db = tmp_path / "tags.db"

    result = run(server.url, csv_path, db)
    assert result.exit_code == 1
    assert server.auth_headers == {f"Bearer {secret}"}  # the key was used...
    assert secret not in result.output  # ...but is in no output,
    for f in tmp_path.glob("tags.db*"):  # no database page, WAL included,
        assert secret.encode() not in f.read_bytes()
    assert "HTTP 500" in parse_rows(db)["an [always500] old clock"][1]  # and no error text
