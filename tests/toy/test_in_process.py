"""The in-process toy pipeline (bench/bench_toy_claims.py) runs the flags of the CLI pipeline,
read by the trainer's and evaluator's own option parsers: the same argv gives the same settings,
and a bad flag is the CLIs' one `error:` line and exit code 2. (The bench's e2e test,
tests/e2e/test_bench_toy_claims.py, runs these stages for real on a tiny world.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from tagalign_eval.cli import request_from_args
from tagalign_eval.suite import ModelSpec
from tagalign_toy.benchmark import TOY_PROTOCOL
from tagalign_toy.demo import BENCHMARKS
from tagalign_toy.stages import ToyPipeline
from tagalign_train.cli import config_from_args

MODEL = "local-dir:/models/toy-clip"


@pytest.fixture
def pipeline(tmp_path: Path) -> ToyPipeline:
    (tmp_path / "world" / "train").mkdir(parents=True)
    for name in ("00000.tar", "00001.tar"):
        (tmp_path / "world" / "train" / name).write_bytes(b"")
    return ToyPipeline(tmp_path / "out", tmp_path / "world", MODEL, 7, 16)


def test_train_flags_give_the_config_the_cli_trains(pipeline, tmp_path):
    labels, run = tmp_path / "tags.db", tmp_path / "out" / "runs" / "r"
    flags = ["--tag-kinds", "objects", "--attribute-weight", "2"]
    cfg = config_from_args(pipeline.train_args(run, labels, 3, flags))
    assert (cfg.preset, cfg.model, cfg.steps, cfg.batch_size, cfg.seed) == ("toy", MODEL, 7, 16, 3)
    assert (cfg.tag_kinds, cfg.attribute_weight, cfg.workers) == ("objects", 2.0, 0)
    assert cfg.data == pipeline.shards and len(cfg.data) == 2
    assert (cfg.labels, cfg.out) == (str(labels), str(run))
    assert cfg.cache_features == str(tmp_path / "out" / "cache" / "features")
    assert cfg.progress and cfg.tag_loss == "softmax"  # the CLI's defaults
    assert not config_from_args(
        [*pipeline.train_args(run, labels, 0, []), "--no-progress"]
    ).progress


def test_eval_flags_give_the_request_the_cli_runs(pipeline, tmp_path):
    request = request_from_args(pipeline.eval_args(None, BENCHMARKS))
    assert request.benchmarks == BENCHMARKS
    assert request.model == ModelSpec(None, "surgery", MODEL, "openai")
    assert request.data_root == str(tmp_path / "world")
    assert {k: request.overrides[k] for k in TOY_PROTOCOL} == TOY_PROTOCOL
    assert (request.device, request.workers, request.skip_missing) == ("cpu", 0, True)
    run = tmp_path / "runs" / "r"
    trained = request_from_args(pipeline.eval_args(run, ("toyshapes",)))
    assert trained.model.checkpoint == str(run) and trained.benchmarks == ("toyshapes",)


@pytest.mark.parametrize(
    ("parse", "args", "command"),
    [
        (config_from_args, ["--labels", "x", "--data", "d", "--out", "o", "--steps", "0"], "train"),
        (request_from_args, ["--crop", "-1"], "eval all"),
    ],
)
def test_a_bad_flag_is_the_clis_one_line(parse, args, command, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: tagalign-{command}: ") and err.count("\n") == 1, err
