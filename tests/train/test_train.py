"""The training loop end to end on the toy world: losses, checkpoints, exact resume, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from tagalign_train import losses
from tagalign_train.checkpoint import load_checkpoint, step_dirs
from tagalign_train.cli import main
from tagalign_train.config import TrainConfig
from tagalign_train.errors import TrainError
from tagalign_train.train import train
from train_helpers import make_tags_db


def config(world, weights, out, **overrides) -> TrainConfig:
    shards, _, db = world
    values = {
        "labels": db,
        "data": shards,
        "out": str(out),
        "preset": "toy",
        "pretrained": weights,
        "batch_size": 8,
        "workers": 0,
        "steps": 6,
        "image_size": 32,
        "log_every": 1,
        "progress": False,
        "text_cache": str(Path(out).parent / "text-cache"),
    }
    values.update(overrides)
    return TrainConfig(**values)


def cli_args(world, weights, out, *extra) -> list[str]:
    shards, _, db = world
    args = [
        "--labels",
        db,
        "--out",
        str(out),
        "--preset",
        "toy",
        "--pretrained",
        weights,
        "--workers",
        "0",
        "--batch-size",
        "4",
        "--image-size",
        "32",
        "--no-progress",
        "--text-cache",
        str(Path(out).parent / "tc"),
    ]
    for s in shards:
        args += ["--data", s]
    return args + list(extra)


def test_toy_run_lowers_both_losses(world, tiny_weights, tmp_path):
    result = train(
        config(world, tiny_weights, tmp_path / "run", steps=60, batch_size=16, image_size=64)
    )
    tag = [h["tag"] for h in result.history]
    itc = [h["itc"] for h in result.history]
    assert sum(tag[-10:]) < 0.85 * sum(tag[:10]), tag
    assert sum(itc[-10:]) < 0.85 * sum(itc[:10]), itc
    saved = load_checkpoint(tmp_path / "run").config
    assert saved.step == 60 and saved.vocab.fingerprint
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 60


def test_tag_loss_is_logged_per_kind_and_the_attribute_part_weighted(world, tiny_weights, tmp_path):
    """metrics.jsonl carries each kind's part of the tag loss (does the attribute part fall?),
    and `attribute_weight` scales only that part of the optimised tag loss."""
    result = train(config(world, tiny_weights, tmp_path / "run", attribute_weight=3.0))
    for h in result.history:
        assert h["tag_object"] > 0 and h["tag_attribute"] > 0
        assert h["tag"] == pytest.approx(h["tag_object"] + 3.0 * h["tag_attribute"], rel=1e-4)
    assert load_checkpoint(tmp_path / "run").config.train.attribute_weight == 3.0


def test_checkpoints_keep_last_and_hold_only_trainable_weights(world, tiny_weights, tmp_path):
    train(config(world, tiny_weights, tmp_path / "run", steps=6, save_every=2, keep_last=2))
    assert [s for s, _ in step_dirs(tmp_path / "run")] == [4, 6]
    weights = load_file(
        str(tmp_path / "run" / "checkpoints" / "step-0000006" / "model.safetensors")
    )
    assert not any(k.startswith("clip.") for k in weights)
    assert {"head_proj", "loss.tag.scale.log_scale", "loss.itc.scale.log_scale"} <= set(weights)


def test_itc_weight_zero_still_trains_tags(world, tiny_weights, tmp_path):
    result = train(
        config(
            world,
            tiny_weights,
            tmp_path / "run",
            itc_weight=0.0,
            tag_kinds="objects",
            tag_loss="balanced",
            tag_softmax="per-kind",
        )
    )
    assert all("itc" not in h and h["tag"] > 0 for h in result.history)


def test_cached_features_train(world, tiny_weights, tmp_path):
    cache = tmp_path / "feats"
    result = train(config(world, tiny_weights, tmp_path / "run", cache_features=str(cache)))
    (root,) = list(cache.iterdir())
    assert (root / "feats.npy").is_file() and result.step == 6
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(
    world, tiny_weights, tmp_path, monkeypatch
):
    """A fake NaN (a real run cannot be made to diverge on demand) from the 5th loss call."""
    calls = {"n": 0}
    real = losses.ContrastiveLoss.forward

    def nan_after_four(self, image_emb, text_emb):
        calls["n"] += 1
        value = real(self, image_emb, text_emb)
        return value * float("nan") if calls["n"] >= 5 else value

    monkeypatch.setattr(losses.ContrastiveLoss, "forward", nan_after_four)
    with pytest.raises(
        TrainError, match=r"non-finite loss at step 5 .*last good checkpoint kept: .*step-0000004"
    ):
        train(config(world, tiny_weights, tmp_path / "run", steps=8, save_every=2))
    assert [s for s, _ in step_dirs(tmp_path / "run")] == [2, 4]


def test_resume_with_another_vocabulary_is_refused(world, tiny_weights, tmp_path):
    train(config(world, tiny_weights, tmp_path / "run", steps=2))
    _, samples, _ = world
    other = make_tags_db(
        tmp_path / "other.db", {k: (c, o, ["shiny"]) for k, (c, o, _) in samples.items()}
    )
    args = cli_args(world, tiny_weights, tmp_path / "run", "--resume")
    args[args.index("--labels") + 1] = other
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: ") and "vocabulary" in line and "differs" in line


@pytest.mark.parametrize(
    "case, fix, message",
    [
        ("missing", None, "tags.db not found"),
        ("novocab", None, "tagparse vocab"),
        ("newer", None, "is newer than this tagparse reads"),
        ("model", ["--model", "tagalign-tiny-vit"], "close matches: tagalign-tiny-ViT"),
    ],
)
def test_bad_input_is_one_line(world, tiny_weights, tmp_path, case, fix, message):
    from tagparse.db import TagsDB

    args = cli_args(world, tiny_weights, tmp_path / "run", "--steps", "1")
    if case == "missing":
        args[args.index("--labels") + 1] = str(tmp_path / "nope.db")
    if case == "novocab":
        db = TagsDB.open(tmp_path / "empty.db", create=True)
        db.add_samples([("k", "a cat")])
        db.close()
        args[args.index("--labels") + 1] = str(tmp_path / "empty.db")
    if case == "newer":
        import shutil
        import sqlite3

        shutil.copy(world[2], tmp_path / "newer.db")
        con = sqlite3.connect(tmp_path / "newer.db")
        con.execute("UPDATE meta SET value='999' WHERE key='format_version'")
        con.commit()
        con.close()
        args[args.index("--labels") + 1] = str(tmp_path / "newer.db")
    args += fix or []
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("error:") == 1


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(world, tiny_weights, tmp_path):
    steps = ["--steps", "120", "--save-every", "4"]
    reference = train(
        config(
            world,
            tiny_weights,
            tmp_path / "ref",
            steps=120,
            batch_size=4,
            save_every=40,
            text_cache=str(tmp_path / "tc"),
        )
    )
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tagalign_train.cli", *cli_args(world, tiny_weights, run, *steps)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not (run / "checkpoints" / "step-0000008").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    killed_at = step_dirs(run)[-1][0]
    assert killed_at < 120
    done = subprocess.run(
        cmd + ["--resume"], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ours = load_file(str(run / "checkpoints" / "step-0000120" / "model.safetensors"))
    ref = load_file(str(reference.checkpoint / "model.safetensors"))
    assert ours.keys() == ref.keys()
    assert all(torch.equal(ours[k], ref[k]) for k in ref), f"resumed from step {killed_at}"


def test_fresh_run_into_a_used_out_dir_is_refused(world, tiny_weights, tmp_path):
    train(config(world, tiny_weights, tmp_path / "run", steps=2))
    before = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    with pytest.raises(TrainError, match="already holds checkpoints; pass --resume"):
        train(config(world, tiny_weights, tmp_path / "run", steps=2))
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == before
