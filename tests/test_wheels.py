"""Each package builds as a wheel; tagparse installs alone without torch; tagalign-train needs
only tagparse's core (no NLP extras); tagalign-toy installs alone from the wheels and runs its demo;
no wheel ships test support. Uses uv (its cache keeps this working offline)."""

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

PACKAGES = ("tagparse", "tagalign-train", "tagalign-eval", "tagalign-toy")

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


def fresh_venv(tmp_path: Path) -> Path:
    """An empty venv on the test's Python; returns its `bin/` folder."""
    venv = tmp_path / "venv"
    subprocess.run(
        [UV, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True
    )
    return venv / "bin"


def pip_install(bin_dir: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`uv pip install ARGS` into the venv of `bin_dir` (not checked: callers assert)."""
    return subprocess.run(
        [UV, "pip", "install", "--python", str(bin_dir / "python"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    return {p: build_wheel(p, out) for p in PACKAGES}


def test_tagparse_installs_alone_without_torch(wheels, tmp_path):
    bin_dir = fresh_venv(tmp_path)
    python = bin_dir / "python"
    install = pip_install(bin_dir, str(wheels["tagparse"]))
    assert install.returncode == 0, install.stderr
    check = subprocess.run(
        [
            str(python),
            "-c",
            (
                "import importlib.util, tagparse.cli, tagparse.reader; print("
                "importlib.util.find_spec('torch') is None, "
                "importlib.util.find_spec('spacy') is None)"
            ),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["True", "True"]
    cli = subprocess.run(
        [str(bin_dir / "tagparse"), "--help"], check=False, capture_output=True, text=True
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
    """Resolve (dry run) the trainer wheel in a venv: torch yes, spaCy/NLTK/Textual/openai no."""
    plan = pip_install(
        fresh_venv(tmp_path),
        "--dry-run",
        "--find-links",
        str(wheels["tagparse"].parent),
        str(wheels["tagalign-train"]),
    )
    assert plan.returncode == 0, plan.stderr
    planned = {
        line.split()[1].split("==")[0].lower()
        for line in plan.stderr.splitlines()
        if line.strip().startswith("+ ")
    }
    assert {"torch", "open-clip-torch", "tagparse", "tagalign-train"} <= planned, planned
    assert not planned & {"spacy", "nltk", "textual", "openai", "vllm", "lemminflect"}, planned


def test_no_wheel_ships_test_support_or_toy_artifacts(wheels):
    names = {p: zipfile.ZipFile(w).namelist() for p, w in wheels.items()}
    assert not [n for ns in names.values() for n in ns if "llamacpp" in n or "/tests/" in n]
    toyish = [n for p, ns in names.items() if p != "tagalign-toy" for n in ns if "toy" in n]
    assert not toyish, toyish
    assert any(n.endswith("open_clip_model.safetensors") for n in names["tagalign-toy"])


def _locked_constraints(tmp_path: Path) -> Path:
    """The workspace lock's exact versions, so a fresh venv resolves what the tests ran against."""
    out = tmp_path / "constraints.txt"
    exported = subprocess.run(
        [UV, "export", "--frozen", "--all-packages", "--no-hashes", "--no-emit-workspace"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    out.write_text(exported)
    return out


@pytest.mark.timeout(1500)
def test_toy_package_installs_alone_and_runs_the_quick_demo(wheels, tmp_path):
    """`pip install tagalign-toy` (from the built wheels) into a fresh venv, then
    `tagalign-demo --quick` to the end: the package declares everything it imports.

    The smallest demo that still runs every stage and every installed CLI (tagparse run and
    vocab, tagalign-train, tagalign-eval, the zero-shot check, the overlays): one trained
    variant, 5 steps, a 32-image world (one batch). What it checks is the installation, not
    the scores (tests/e2e/test_toy_demo.py checks those); the full `--quick` took 262 s here."""
    bin_dir = fresh_venv(tmp_path)
    install = pip_install(
        bin_dir,
        "--find-links",
        str(wheels["tagalign-toy"].parent),
        "-c",
        str(_locked_constraints(tmp_path)),
        "tagalign-toy",
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    demo = subprocess.run(
        [
            str(bin_dir / "tagalign-demo"),
            "--quick",
            *("--variants", "itc-obj-attr", "--train-steps", "5"),
            *("--n-train", "32", "--n-val", "4"),
            "--out",
            str(tmp_path / "demo"),
            "--no-progress",
            "--threads",
            "1",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
        cwd=tmp_path,
    )
    assert demo.returncode == 0, (demo.stdout[-2000:], demo.stderr[-3000:])
    assert "| variant | shapes mIoU | attribute-shapes mIoU | attribute-pairs mIoU |" in demo.stdout
    summary = (tmp_path / "demo" / "summary.json").read_text()
    assert str(bin_dir.parent) in summary  # the toy CLIP came from the installed package
