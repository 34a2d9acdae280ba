"""`--backend vllm`: parse with a model served by a `vllm serve` subprocess this backend manages.

Why a managed server rather than vLLM's in-process `LLM` engine (see docs/llm-parsing.md): the
server runs the same continuous-batching engine, so throughput is the same once enough requests
are in flight; requests then take the one OpenAI code path that `--backend openai` already tests
(structured output, retries, validation); and the identical recipe scales out to a cluster where
every node runs `vllm serve` and `tagparse run --backend openai --shard I/N`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tagparse.backends.openai_backend import LLMBackend, build_llm_backend, llm_spec
from tagparse.errors import TagparseError
from tagparse.llm.models import chat_format_for, resolve_model
from tagparse.llm.server import ManagedServer, free_port
from tagparse.parsing import ParseResult, ParserSpec

INSTALL_HINT = (
    "pip install 'tagparse[vllm]' on a Linux machine with NVIDIA GPUs, or point "
    "--backend openai --base-url at any OpenAI-compatible server"
)


class ServedBackend:
    """An LLM backend bound to the server process it started; `close()` stops the server."""

    def __init__(self, backend: LLMBackend, server: ManagedServer):
        self.backend = backend
        self.server = server
        self.spec = backend.spec

    def parse_batch(self, captions: Sequence[str]) -> list[ParseResult]:
        return self.backend.parse_batch(captions)

    def close(self) -> None:
        self.server.stop()


def serve(
    server: ManagedServer,
    backend_name: str,
    model: str,
    *,
    spec_params: dict | None = None,
    **options,
) -> ServedBackend:
    """Start `server`, then build the OpenAI-path backend on it (stopping the server on failure)."""
    server.start()
    try:
        backend = build_llm_backend(
            backend_name, server.base_url, model, spec_params=spec_params, **options
        )
    except BaseException:
        server.stop()
        raise
    return ServedBackend(backend, server)


def vllm_command(
    model_id: str,
    port: int,
    *,
    tensor_parallel_size: int = 1,
    chat_template: Path | None = None,
    host: str = "127.0.0.1",
) -> list[str]:
    """`vllm serve` with prefix caching of the shared few-shot prefix and tensor parallelism."""
    cmd = [
        "vllm",
        "serve",
        model_id,
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        model_id,
        "--tensor-parallel-size",
        str(tensor_parallel_size),
        "--enable-prefix-caching",
    ]
    if chat_template is not None:
        cmd += ["--chat-template", str(chat_template)]
    return cmd


def spec(*, model: str | None = None, **options) -> ParserSpec | None:
    """The fingerprint without starting vLLM: a fully cached re-run never loads the model."""
    if not model:
        return None
    model_id = resolve_model(model)
    return llm_spec("vllm", model_id, spec_params=_spec_params(model_id), **options)


def create(
    *, model: str | None = None, tensor_parallel_size: int | None = 1, **options
) -> ServedBackend:
    """The `vllm` backend; options are `tagparse run`'s flags (others are ignored)."""
    if not model:
        raise TagparseError("--backend vllm needs --model, e.g. vicuna-33b or a Hugging Face id")
    tp = tensor_parallel_size or 1
    _check_runtime(tp)
    model_id = resolve_model(model)
    template_path = None
    fmt = chat_format_for(model_id)
    if fmt is not None:  # e.g. Vicuna: no chat template in its tokenizer; hand vLLM ours
        template_path = Path(tempfile.mkdtemp(prefix="tagparse-vllm-")) / f"{fmt.name}.jinja"
        template_path.write_text(fmt.jinja_template(), "utf-8")
    port = free_port()
    server = ManagedServer(
        vllm_command(model_id, port, tensor_parallel_size=tp, chat_template=template_path),
        port,
        name="vllm serve",
        startup_timeout=1800.0,
    )
    return serve(server, "vllm", model_id, spec_params=_spec_params(model_id), **options)


def _spec_params(model_id: str) -> dict:
    fmt = chat_format_for(model_id)
    return {"chat_format": fmt.name} if fmt is not None else {}


def _check_runtime(tensor_parallel_size: int) -> None:
    if importlib.util.find_spec("vllm") is None or shutil.which("vllm") is None:
        raise TagparseError(f"--backend vllm: vLLM is not installed; {INSTALL_HINT}")
    gpus = _visible_gpus()
    if gpus == 0:
        raise TagparseError(f"--backend vllm: no NVIDIA GPU is visible; {INSTALL_HINT}")
    if tensor_parallel_size > gpus:
        raise TagparseError(
            f"--tensor-parallel-size {tensor_parallel_size} needs that many GPUs; "
            f"{gpus} visible (set CUDA_VISIBLE_DEVICES or lower it)"
        )


def _visible_gpus() -> int:
    """GPUs vLLM could use: nvidia-smi's list, limited by CUDA_VISIBLE_DEVICES when set.

    Asked of nvidia-smi rather than torch so that this process never initialises CUDA.
    """
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    found = len(out.stdout.split()) if out.returncode == 0 else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found = min(found, len([d for d in visible.split(",") if d.strip()]))
    return found
