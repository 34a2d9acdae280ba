"""`tagparse run --backend openai --distributor ray`: Ray Data's HTTP request processor against the
REAL llama.cpp server (SmolLM2-135M), on a REAL local Ray cluster (2 CPUs, one for the module).

The rows are compared with a local run against the same server row for row: temperature 0, one
server slot and no prompt cache make llama.cpp's greedy decoding repeat itself (the raw replies
included).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from llm_cli import run_openai, write_captions_csv
from tagparse.ray.cluster import RayCluster

pytest.importorskip("ray")
pytestmark = [pytest.mark.llm, pytest.mark.slow]

CAPTIONS = [
    "A small kitten lying on the grass, playing with a brown shoe.",
    "people sitting in bleachers",
    "a white plate with a slice of pizza",
    "two red buses parked next to a brick building",
    "a man riding a wave on top of a surfboard",
    "a black dog sleeping on a green sofa",
]


@pytest.fixture(scope="module")
def ray_cluster():
    cluster = RayCluster(None, num_cpus=2)
    yield cluster
    cluster.close()


def parse_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return sorted(
            con.execute(
                "SELECT s.key, s.caption, p.objects, p.attributes, p.raw_output, p.status, "
                "p.error, r.fingerprint FROM samples s "
                "JOIN parses p ON p.caption_hash = s.caption_hash "
                "JOIN parsers r ON r.id = p.parser_id"
            )
        )


def run(url: str, csv_path: Path, db: Path, *extra: str):
    return run_openai(url, csv_path, db, "--max-tokens", "96", "--timeout", "120", *extra)


def test_openai_through_ray_equals_a_local_run(replayable_llama_server, ray_cluster, tmp_path):
    llama_server = replayable_llama_server
    csv_path = write_captions_csv(tmp_path / "captions.csv", CAPTIONS)
    local, distributed = tmp_path / "local.db", tmp_path / "ray.db"
    first = run(llama_server, csv_path, local, "--concurrency", "1")
    assert first.exit_code in (0, 1), first.output  # 1 only if the tiny model broke a reply

    result = run(llama_server, csv_path, distributed, "--distributor", "ray")
    assert result.exit_code == first.exit_code, result.output
    assert len(parse_rows(local)) == len(CAPTIONS)
    assert parse_rows(distributed) == parse_rows(local)

    again = run(llama_server, csv_path, distributed, "--distributor", "ray")
    assert "parsed 0 · cached" in again.output and "new samples" in again.output
    assert parse_rows(distributed) == parse_rows(local)
