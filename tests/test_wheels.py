"""Each package builds as a wheel; tagparse installs alone without torch; tagalign-train needs
only tagparse's core (no NLP extras). Uses uv (its cache keeps this working offline)."""

import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = os.environ.get("UV") or shutil.which("uv")  # `uv run` exports UV

pytestmark = [pytest.mark.slow, pytest.mark.skipif(UV is None, reason="uv is not installed")]


def build_wheel(package: str, out: Path) -> Path:
    subprocess.run(
        [UV, "build", "--wheel", "--package", package, "--out-dir", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return next(out.glob(f"{package.replace('-', '_')}-*.whl"))


def requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(name).decode())
    return [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    return {p: build_wheel(p, out) for p in ("tagparse", "tagalign-train", "tagalign-eval")}


def test_tagparse_installs_alone_without_torch(wheels, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(
        [UV, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True
    )
    python = venv / "bin" / "python"
    install = subprocess.run(
        [UV, "pip", "install", "--python", str(python), str(wheels["tagparse"])],
        check=False,
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    check = subprocess.run(
        [
            str(python),
            "-c",
            (
                "import importlib.util, tagparse.cli, tagparse.reader; print("
                "importlib.util.find_spec('torch') is None, importlib.util.find_spec('spacy') is None)"
            ),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["True", "True"]
    cli = subprocess.run(
        [str(venv / "bin" / "tagparse"), "--help"], check=False, capture_output=True, text=True
    )
    assert cli.returncode == 0 and "run" in cli.stdout


def test_core_requirements_stay_small(wheels):
    names = {
        r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for r in requirements(wheels["tagparse"])
    }
    assert names == {"sqlalchemy", "click", "numpy", "tqdm"}


def test_trainer_needs_only_tagparse_core(wheels):
    tagparse_reqs = [
        r for r in requirements(wheels["tagalign-train"]) if r.lower().startswith("tagparse")
    ]
    assert tagparse_reqs and all("[" not in r for r in tagparse_reqs), tagparse_reqs
    assert any(
        r.lower().startswith("tagalign-train") for r in requirements(wheels["tagalign-eval"])
    )


def test_trainer_install_pulls_no_nlp_stack(wheels, tmp_path):
    """Resolve (dry run) the trainer wheel into a fresh venv: torch yes, spaCy/NLTK/Textual/openai no."""
    venv = tmp_path / "venv"
    subprocess.run(
        [UV, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True
    )
    plan = subprocess.run(
        [
            UV,
            "pip",
            "install",
            "--dry-run",
            "--python",
            str(venv / "bin" / "python"),
            "--find-links",
            str(wheels["tagparse"].parent),
            str(wheels["tagalign-train"]),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0, plan.stderr
    planned = {
        line.split()[1].split("==")[0].lower()
        for line in plan.stderr.splitlines()
        if line.strip().startswith("+ ")
    }
    assert {"torch", "open-clip-torch", "tagparse", "tagalign-train"} <= planned, planned
    assert not planned & {"spacy", "nltk", "textual", "openai", "vllm", "lemminflect"}, planned
