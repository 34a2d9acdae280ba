"""`--report-to` (TensorBoard, wandb offline) and the metrics.png every run leaves, on the toy
world: the trackers hold exactly what metrics.jsonl holds."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from tagalign_train.cli import main
from tagalign_train.tracking import wandb_run_id
from test_train import cli_args

STEPS = 5


def _run(world, tiny_weights, out, *extra):
    args = cli_args(world, tiny_weights, out, "--steps", str(STEPS), "--log-every", "1", *extra)
    return CliRunner().invoke(main, args)


def _metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # two runs / wandb's service: ~20 s on a busy 2-core machine
def test_tensorboard_scalars_equal_metrics_jsonl_and_the_plot_is_drawn(
    world, tiny_weights, tmp_path
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = _run(world, tiny_weights, out, "--report-to", "tensorboard")
    assert result.exit_code == 0, result.output
    # a resumed run appends its steps; its name and config are not logged a second time
    args = ["--report-to", "tensorboard", "--resume", "--steps", str(STEPS + 2)]
    result = CliRunner().invoke(main, cli_args(world, tiny_weights, out, "--log-every", "1", *args))
    assert result.exit_code == 0, result.output
    logged = _metrics(out)
    assert [e["step"] for e in logged] == list(range(1, STEPS + 3))

    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    keys = [k for k in logged[0] if k != "step"]
    assert sorted(events.Tags()["scalars"]) == sorted(f"train/{k}" for k in keys)
    for key in keys:
        scalars = events.Scalars(f"train/{key}")
        assert [s.step for s in scalars] == [e["step"] for e in logged]
        # event files store float32: equal to the JSON value rounded to float32
        assert [s.value for s in scalars] == [float(np.float32(e[key])) for e in logged], key
    texts = events.Tags()["tensors"]
    assert {"run_name/text_summary", "config/text_summary"} <= set(texts)
    assert len(events.Tensors("run_name/text_summary")) == 1
    config = events.Tensors("config/text_summary")
    assert len(config) == 1 and b'"fingerprint"' in config[0].tensor_proto.string_val[0]

    with Image.open(out / "metrics.png") as png:
        png.verify()
    with Image.open(out / "metrics.png") as png:
        assert png.format == "PNG" and png.size == (900, 340)
        assert len(png.convert("L").getcolors(1 << 16)) > 10  # lines drawn, not a blank canvas


def test_a_run_without_trackers_still_draws_the_plot(world, tiny_weights, tmp_path):
    out = tmp_path / "run"
    result = _run(world, tiny_weights, out)
    assert result.exit_code == 0, result.output
    assert not (out / "tensorboard").exists() and not (out / "wandb").exists()
    with Image.open(out / "metrics.png") as png:
        assert png.format == "PNG" and png.size == (900, 340)


@pytest.mark.slow  # two runs / wandb's service: ~20 s on a busy 2-core machine
def test_wandb_offline_leaves_a_run_folder(world, tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    result = _run(world, tiny_weights, out, "--report-to", "wandb")
    assert result.exit_code == 0, result.output
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((out / "wandb").iterdir())
    run_id = wandb_run_id(out)
    assert runs[0].name.endswith(f"-{run_id}")
    data = (runs[0] / f"run-{run_id}.wandb").read_bytes()
    # the record log is wandb's protobuf; the strings it holds appear as they are
    assert b"train/tag_scale" in data and b"tagalign-tiny-ViT" in data and b"fingerprint" in data
    assert (out / "metrics.png").is_file()


@pytest.mark.parametrize(
    "report_to, message",
    [
        ("tensorbord", "unknown tracker 'tensorbord'; choose from tensorboard, wandb or all"),
        (
            "wandb",
            "the wandb package is not installed; "
            + "install it with `pip install 'tagalign-train[wandb]'`",
        ),
        (
            "all",
            "the tensorboard package is not installed; "
            + "install it with `pip install 'tagalign-train[tensorboard]'`",
        ),
    ],
)
def test_unknown_or_missing_tracker_is_one_line(
    world, tiny_weights, tmp_path, monkeypatch, report_to, message
):
    """A tracker that is not installed is simulated by hiding its package from the import
    system (sys.modules[name] = None): uninstalling it from the test venv is not on demand."""
    if report_to in ("wandb", "all"):
        monkeypatch.setitem(sys.modules, report_to if report_to != "all" else "tensorboard", None)
    out = tmp_path / "run"
    result = _run(world, tiny_weights, out, "--report-to", report_to)
    assert result.exit_code == 2, result.output
    assert result.output.count("error:") == 1 and message in result.output, result.output
    assert not out.exists()
