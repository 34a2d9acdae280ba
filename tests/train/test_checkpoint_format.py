"""config.json versions: a v1 file (written by the trainer before typed configs) still loads to
the identical model; random towers rebuild from their recorded seed (v3) and older configs on
random towers are refused; the current version round-trips and refuses to read the future."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tagalign_train.checkpoint import CONFIG, WEIGHTS, load_checkpoint, read_config
from tagalign_train.config import TrainConfig
from tagalign_train.errors import TrainError
from tagalign_train.model import build_model
from tagalign_train.model_config import FORMAT_VERSION, CheckpointConfig, ModelConfig
from train_helpers import TINY

V1 = Path(__file__).parent / "data" / "checkpoint-v1" / CONFIG


def _v1_checkpoint(tmp_path: Path, pretrained: str) -> tuple[Path, torch.nn.Module]:
    """The fixture config.json (its `pretrained` set to `pretrained`) beside trained-looking
    weights of the model it describes."""
    reference = build_model(TINY, pretrained, "surgery", "conv", image_size=32)
    with torch.no_grad():
        for p in reference.projector.parameters():
            p.add_(0.1)
    ckpt_dir = tmp_path / "step-0000002"
    ckpt_dir.mkdir()
    (ckpt_dir / CONFIG).write_text(
        json.dumps({**json.loads(V1.read_text()), "pretrained": pretrained})
    )
    save_file(reference.trainable_state_dict(), str(ckpt_dir / WEIGHTS))
    return ckpt_dir, reference


def test_v1_config_loads_to_the_identical_model(tmp_path, tiny_weights):
    ckpt_dir, reference = _v1_checkpoint(tmp_path, tiny_weights)
    loaded = load_checkpoint(ckpt_dir)
    assert loaded.config.model == reference.config
    ours, theirs = loaded.model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    v1 = json.loads(V1.read_text())
    assert loaded.config.vocab.fingerprint == v1["vocab_fingerprint"]
    assert list(loaded.config.vocab.kinds) == v1["tag_kinds"] == ["object", "attribute"]
    assert loaded.config.vocab.tags == v1["vocab"]
    recorded = loaded.config.train.recorded()  # typed; the settings newer than v1 at defaults
    assert {k: recorded[k] for k in v1["train"]} == v1["train"] and loaded.config.step == 2
    assert loaded.config.train.attribute_weight == 1.0
    assert loaded.config.effective_lr == v1["effective_lr"]


def test_random_towers_rebuild_identically_and_legacy_ones_are_refused(tmp_path):
    """Issue 12 case 2: a `--pretrained none` model records its towers' seed (v3), so every
    load is the same model; a v1/v2 config on random towers recorded none and is refused."""
    model = build_model(TINY, "none", image_size=32, init_seed=7)
    assert model.config.init_seed == 7
    ckpt_dir = tmp_path / "step-0000001"
    ckpt_dir.mkdir()
    (ckpt_dir / CONFIG).write_text(CheckpointConfig(model=model.config).to_json())
    save_file(model.trainable_state_dict(), str(ckpt_dir / WEIGHTS))
    torch.manual_seed(1)
    first = load_checkpoint(ckpt_dir).model.state_dict()
    torch.manual_seed(2)  # whatever the caller's generator holds
    second = load_checkpoint(ckpt_dir).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert all(torch.equal(first[k], v) for k, v in model.state_dict().items())

    v2 = json.loads((ckpt_dir / CONFIG).read_text())
    del v2["model"]["init_seed"]
    v1 = json.loads(V1.read_text())
    for legacy in ({**v2, "format_version": 2}, v1):
        (ckpt_dir / CONFIG).write_text(json.dumps(legacy))
        with pytest.raises(TrainError, match="did not record their seed.*retrain"):
            load_checkpoint(ckpt_dir)


def test_current_version_round_trips_and_reads_as_sections(tmp_path, tiny_weights):
    ckpt_dir, _ = _v1_checkpoint(tmp_path, tiny_weights)
    config = read_config(ckpt_dir)
    text = config.to_json()
    assert CheckpointConfig.from_json(text) == config
    written = json.loads(text)
    assert written["format_version"] == FORMAT_VERSION == 3
    assert written["model"]["init_seed"] is None  # pretrained weights: no seed
    assert written["model"]["name"] == TINY and written["model"]["preprocessing"]["std"]
    assert written["vocab"]["kinds"] == ["object", "attribute"]
    assert ModelConfig.from_dict(written["model"]) == config.model


def test_newer_or_foreign_configs_are_refused(tmp_path, tiny_weights):
    ckpt_dir, _ = _v1_checkpoint(tmp_path, tiny_weights)
    raw = json.loads(V1.read_text())
    (ckpt_dir / CONFIG).write_text(json.dumps({**raw, "format_version": 99}))
    with pytest.raises(TrainError, match="format v99 is newer than this tagalign-train"):
        load_checkpoint(ckpt_dir)
    (ckpt_dir / CONFIG).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(TrainError, match="not a tagalign-train checkpoint config"):
        load_checkpoint(ckpt_dir)
    (ckpt_dir / CONFIG).write_text(json.dumps({"format": "tagalign-train", "format_version": 2}))
    with pytest.raises(TrainError, match="malformed checkpoint config"):
        load_checkpoint(ckpt_dir)


def test_damage_is_found_with_and_without_a_manifest(tmp_path, tiny_weights):
    """A checkpoint from before manifests is checked by parsing its files; a current one by
    size and SHA-256 (a flipped byte of the same size is found too)."""
    from tagalign_train.checkpoint import write_checkpoint

    legacy, reference = _v1_checkpoint(tmp_path, tiny_weights)
    data = (legacy / WEIGHTS).read_bytes()
    (legacy / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(TrainError, match="damaged checkpoint: model.safetensors is unreadable"):
        load_checkpoint(legacy)

    config = CheckpointConfig(model=reference.config, step=3)
    current = write_checkpoint(tmp_path / "run", config, reference.trainable_state_dict(), {}, 0)
    assert load_checkpoint(current).config.step == 3
    data = bytearray((current / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    (current / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(TrainError, match="does not match its SHA-256 in manifest.json"):
        load_checkpoint(current)
    with pytest.raises(TrainError, match="no intact checkpoint .*step-0000003"):
        load_checkpoint(tmp_path / "run")


@pytest.mark.parametrize(
    ("train", "named"),
    [([1, 2], "'train' is a list"), ({"lr": 0.1}, "labels"), ({"labels": "t.db"}, "data")],
)
def test_a_damaged_train_record_is_a_malformed_config(tmp_path, train, named):
    """config.json's `train` is read as a typed TrainConfig (issue 20, item 9): a damaged one
    is the one-line malformed-config error, not a traceback."""
    model = build_model(TINY, "none", image_size=32, init_seed=7)
    ckpt_dir = tmp_path / "step-0000001"
    ckpt_dir.mkdir()
    config = json.loads(CheckpointConfig(model=model.config).to_json())
    (ckpt_dir / CONFIG).write_text(json.dumps({**config, "train": train}))
    with pytest.raises(TrainError, match=named):
        read_config(ckpt_dir)


def test_the_train_record_round_trips_and_tolerates_unknown_keys(tmp_path):
    model = build_model(TINY, "none", image_size=32, init_seed=7)
    train = TrainConfig(labels="t.db", data=["s.tar"], out="run", lr=0.5, attribute_weight=2.0)
    text = CheckpointConfig(model=model.config, train=train).to_json()
    assert CheckpointConfig.from_json(text).train == train
    newer = json.loads(text)
    newer["train"]["a_setting_from_a_newer_trainer"] = 3
    assert CheckpointConfig.from_dict(newer).train == train
