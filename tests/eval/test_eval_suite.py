"""The Python entry point: `run_suite` returns typed results, fails fast with the CLI's messages,
and its results.json is the file the CLI writes."""

import dataclasses
import json

import pytest
import tagalign_eval
from eval_synthetic import write_benchmark
from tagalign_eval import BenchmarkResult, EvalError, ModelSpec, SuiteRequest, run_suite
from tagalign_eval.datasets import get_benchmark
from tagalign_eval.report import write_markdown, write_results

TINY = "tagalign-tiny-ViT"
FAST = {"short_side": 64, "crop": 64, "stride": 32}

RESULT_KEYS = [
    "benchmark",
    "data_root",
    "images",
    "classes",
    "reduce_zero_label",
    "ignore_index",
    "protocol",
    "model",
    "model_config",
    "clip_blend_applied",
    "metrics",
    "out_of_range_labels",
    "out_of_range_files",
    "device",
    "world_size",
    "seconds",
    "images_per_s",
    "versions",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_benchmark(get_benchmark("voc"), root, n=2, size=(64, 48))
    return root


def _request(data, tiny_weights, **kw) -> SuiteRequest:
    request = SuiteRequest(
        ["voc"],
        data,
        ModelSpec(baseline="surgery", model_name=TINY, pretrained=tiny_weights),
        overrides=FAST,
        workers=0,
        progress=False,
    )
    return dataclasses.replace(request, **kw)


def test_every_export_resolves():
    assert all(getattr(tagalign_eval, name) for name in tagalign_eval.__all__)


def test_run_suite_returns_typed_results_and_writes_the_cli_files(data, tiny_weights, tmp_path):
    seen = []
    suite = run_suite(
        _request(data, tiny_weights, benchmarks=["voc", "context"], skip_missing=True),
        on_result=seen.append,
    )
    (result,) = suite.results
    assert isinstance(result, BenchmarkResult) and seen == [result]
    assert result.benchmark == "voc" and result.images == 2 and result.world_size == 1
    assert result.protocol.bg_thresh == 0.45 and result.protocol.stride == 32
    assert result.clip_blend_applied is False and result.model["baseline"] == "surgery"
    assert [c.name for c in result.metrics.per_class] == list(result.class_names)
    assert [name for name, _ in suite.skipped] == ["context"]
    assert suite.label == "surgery" and suite.table.splitlines()[2].startswith("| surgery |")

    record = result.to_dict()
    assert list(record) == RESULT_KEYS
    assert record["metrics"]["mIoU"] == result.metrics.miou
    assert record["classes"]["count"] == len(result.class_names) == 21
    write_results(tmp_path / "out/results.json", suite)
    write_markdown(tmp_path / "out/table.md", suite)
    payload = json.loads((tmp_path / "out/results.json").read_text())
    assert payload == json.loads(json.dumps(suite.to_dict()))
    assert (tmp_path / "out/table.md").read_text() == payload["table"] == suite.table
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.json", "table.md"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"data_root": None}, "--data-root is required"),
        ({"data_root": "{data}/nope"}, "is not a folder"),
        ({"benchmarks": ["nope"]}, "unknown benchmark 'nope'"),
        ({"benchmarks": ["context"], "skip_missing": True}, "no benchmark found under"),
        ({"protocol": "nope"}, "unknown protocol 'nope'"),
        ({"overrides": {"stride": 99, "crop": 64}}, "--stride 99 is larger than --crop 64"),
        ({"model": ModelSpec()}, "exactly one of --checkpoint"),
    ],
)
def test_mistakes_raise_the_cli_message(data, tiny_weights, change, message):
    if change.get("data_root"):
        change["data_root"] = change["data_root"].format(data=data)
    with pytest.raises(EvalError, match=message):
        run_suite(_request(data, tiny_weights, **change))


def test_protocol_mistakes_surface_before_the_model_loads(data, tmp_path):
    """Fail fast: a bad protocol is reported even though the model could never load."""
    never = ModelSpec(baseline="surgery", model_name=TINY, pretrained=str(tmp_path / "none.pt"))
    request = _request(data, None, model=never, overrides={"clip_blend": 2.0})
    with pytest.raises(
        EvalError, match="--clip-blend 2.0 is out of range: it must be >= 0 and <= 1"
    ):
        run_suite(request)


@pytest.mark.parametrize("baseline", ["sclip", "clearclip", "naclip"])
def test_every_dense_method_of_the_trainer_is_a_baseline(data, tiny_weights, baseline):
    """`--baseline` offers each of tagalign-train's dense methods (no second list to keep in
    step), and the newer last blocks evaluate like the others."""
    from tagalign_eval.baselines import BASELINES
    from tagalign_train.config import DENSE_METHODS

    assert set(BASELINES.values()) == set(DENSE_METHODS)
    spec = ModelSpec(baseline=baseline, model_name=TINY, pretrained=tiny_weights)
    (result,) = run_suite(_request(data, tiny_weights, model=spec)).results
    assert result.model["baseline"] == baseline and result.images == 2
    assert 0 <= result.metrics.miou <= 100
