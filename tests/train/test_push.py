"""`tagalign-train push`: the shared layout (model.safetensors, config.json, manifest, model
card; never train_state.pt), loading it back through `local-dir:` in tagalign-eval with the run
folder's predictions, and the one-line errors of an unreachable Hub and an empty offline cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from tagalign_eval.cli import main as eval_main
from tagalign_train.checkpoint import load_checkpoint
from tagalign_train.cli import main
from tagalign_train.train import train
from test_train import config

TABLE = "| model | VOC | avg |\n|---|---|---|\n| run | 12.3 | 12.3 |"


@pytest.fixture(scope="module")
def run_dir(world, tiny_weights, tmp_path_factory) -> Path:
    """A 3-step toy run with a tagalign-eval results.json beside its checkpoints (written by
    hand in results.json's format: a real evaluation is not what these tests check)."""
    out = tmp_path_factory.mktemp("push") / "run"
    train(config(world, tiny_weights, out, steps=3, save_every=3))
    (out / "results.json").write_text(json.dumps({"results": [], "table": TABLE}))
    return out


def _push(*args: str):
    return CliRunner().invoke(main, ["push", *map(str, args)])


def _predict(checkpoint: str, image: Path, out: Path) -> dict[str, np.ndarray]:
    fast = ["--short-side", "32", "--crop", "32", "--stride", "16"]
    args = ["predict", str(image), "--classes", "red,green,blue", "--out", str(out), *fast]
    result = CliRunner().invoke(eval_main, [*args, "--checkpoint", checkpoint])
    assert result.exit_code == 0, result.output
    return {p.name: np.asarray(Image.open(p)) for p in sorted(out.rglob("*.png"))}


def test_push_local_dir_writes_the_layout_and_predicts_as_the_run(run_dir, tmp_path):
    shared = tmp_path / "shared"
    result = _push(run_dir, "--repo-id", "org/tiny", "--local-dir", shared)
    assert result.exit_code == 0, result.output
    assert f"local-dir:{shared}" in result.output
    assert sorted(p.name for p in shared.iterdir()) == [
        "README.md",
        "config.json",
        "manifest.json",
        "model.safetensors",
    ]
    step = run_dir / "checkpoints" / "step-0000003"
    for name in ("model.safetensors", "config.json"):
        assert (shared / name).read_bytes() == (step / name).read_bytes()

    card = (shared / "README.md").read_text()
    saved = load_checkpoint(f"local-dir:{shared}").config
    assert card.startswith("---\nlibrary_name: tagalign-train\n")
    assert "| base model | `tagalign-tiny-ViT` (open_clip) |" in card
    assert f"| base weights | `{saved.model.pretrained}` |" in card
    assert f"fingerprint `{saved.vocab.fingerprint}`" in card and "`circle`" in card
    assert TABLE in card and "hf-hub:org/tiny" in card

    image = tmp_path / "photo.png"
    pixels = (np.random.default_rng(3).random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(image)
    from_run = _predict(str(run_dir), image, tmp_path / "pred-run")
    from_shared = _predict(f"local-dir:{shared}", image, tmp_path / "pred-shared")
    assert from_run.keys() == from_shared.keys() and "photo_pred.png" in from_run
    for name in from_run:
        assert (from_run[name] == from_shared[name]).all(), name


def test_push_into_a_used_folder_is_refused_and_keeps_it(run_dir, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    result = _push(run_dir, "--repo-id", "org/tiny", "--local-dir", used)
    assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
    assert "is not an empty folder" in result.output
    assert [p.name for p in used.iterdir()] == ["notes.txt"]


def test_local_dir_that_is_not_a_folder_is_one_line(tmp_path):
    result = CliRunner().invoke(
        eval_main,
        ["predict", str(tmp_path / "x.png"), "--classes", "a,b", "--out", str(tmp_path / "o")]
        + ["--checkpoint", f"local-dir:{tmp_path / 'nowhere'}"],
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("error:") == 1


@pytest.mark.slow
def test_upload_to_an_unreachable_hub_is_one_line(run_dir, tmp_path):
    """The real CLI in a subprocess: huggingface_hub reads HF_ENDPOINT when it is imported, so
    it is set before the process starts (as a user sets it); ~20 s on a busy 2-core machine."""
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "OMP_NUM_THREADS": "1"}
    env |= {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_test"}
    cmd = [sys.executable, "-m", "tagalign_train.cli", "push", str(run_dir), "--repo-id", "o/t"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: push to http://127.0.0.1:9 as o/t failed"
    ), done.stderr
    assert "--local-dir" in lines[0] and done.stdout == ""


@pytest.fixture
def offline_hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache in offline mode, for in-process commands: what HF_HUB_CACHE
    and HF_HUB_OFFLINE=1 set when huggingface_hub is imported (its `constants`, which it reads
    on every call), set directly since this process imported it long ago."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hf_hub_offline_with_nothing_cached_is_one_line(tmp_path, offline_hub_cache):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    args = ["predict", str(image), "--classes", "a,b", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(eval_main, [*args, "--checkpoint", "hf-hub:org/tiny"])
    assert result.exit_code == 2, result.output
    assert result.output.count("error:") == 1 and result.output.startswith(
        "error: hf-hub:org/tiny: not in the local Hugging Face cache, and HF_HUB_OFFLINE=1 "
        "forbids downloading it"
    ), result.output
    assert not (tmp_path / "out").exists()


def test_hf_hub_loads_a_cached_push_offline_with_the_run_predictions(
    run_dir, tmp_path, offline_hub_cache
):
    """The pushed layout is placed where a download would have put it (the hub cache's
    documented layout, models--ORG--NAME/{refs/main, snapshots/COMMIT/}): no Hub can be reached
    here."""
    commit = "0" * 40
    repo = offline_hub_cache / "models--org--tiny"
    pushed = _push(run_dir, "--repo-id", "org/tiny", "--local-dir", repo / "snapshots" / commit)
    assert pushed.exit_code == 0, pushed.output
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)

    image = tmp_path / "photo.png"
    pixels = (np.random.default_rng(4).random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(image)
    from_hub = _predict("hf-hub:org/tiny", image, tmp_path / "pred-hub")
    from_run = _predict(str(run_dir), image, tmp_path / "pred-run")
    assert from_hub.keys() == from_run.keys() and "photo_pred.png" in from_run
    for name in from_run:
        assert (from_hub[name] == from_run[name]).all(), name
