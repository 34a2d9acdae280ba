"""The model API shared with tagalign-eval: dense features, projector, checkpoint loading."""

from __future__ import annotations

import math

import open_clip
import pytest
import torch
import torch.nn.functional as F
from tagalign_train import checkpoint as ckpt
from tagalign_train.checkpoint import load_checkpoint
from tagalign_train.errors import TrainError
from tagalign_train.model import build_model
from tagalign_train.model_config import CheckpointConfig
from train_helpers import TINY


def _ln(x, sd, prefix):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"], 1e-5)


def _mha(x, sd, prefix, heads, vv=False):
    """Plain multi-head attention from raw weights; vv=True uses the values as queries and keys."""
    _b, _n, c = x.shape
    d = c // heads
    qkv = x @ sd[prefix + ".in_proj_weight"].T + sd[prefix + ".in_proj_bias"]
    q, k, v = qkv.split(c, dim=-1)
    if vv:
        q = k = v
    outs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        att = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(d), dim=-1)
        outs.append(att @ v[..., sl])
    out = torch.cat(outs, dim=-1)
    return out @ sd[prefix + ".out_proj.weight"].T + sd[prefix + ".out_proj.bias"]


def _mlp(x, sd, prefix):
    h = F.gelu(x @ sd[prefix + ".c_fc.weight"].T + sd[prefix + ".c_fc.bias"])
    return h @ sd[prefix + ".c_proj.weight"].T + sd[prefix + ".c_proj.bias"]


def reference_surgery(sd, images, heads, layers, patch, n_surgery):
    """CLIP Surgery written from the paper's description, on the raw state dict (native grid)."""
    x = F.conv2d(images, sd["visual.conv1.weight"], stride=patch)
    b, c, h, w = x.shape
    x = x.flatten(2).transpose(1, 2)
    cls = sd["visual.class_embedding"].expand(b, 1, c)
    x = torch.cat([cls, x], 1) + sd["visual.positional_embedding"]
    x = _ln(x, sd, "visual.ln_pre")
    first = layers - n_surgery
    for i in range(first):
        p = f"visual.transformer.resblocks.{i}"
        x = x + _mha(_ln(x, sd, p + ".ln_1"), sd, p + ".attn", heads)
        x = x + _mlp(_ln(x, sd, p + ".ln_2"), sd, p + ".mlp")
    new, ori = x.clone(), x.clone()
    for i in range(first, layers):
        p = f"visual.transformer.resblocks.{i}"
        y = _ln(ori, sd, p + ".ln_1")
        new = new + _mha(y, sd, p + ".attn", heads, vv=True)
        ori = ori + _mha(y, sd, p + ".attn", heads)
        ori = ori + _mlp(_ln(ori, sd, p + ".ln_2"), sd, p + ".mlp")
    return new[:, 1:].transpose(1, 2).reshape(b, c, h, w)


@pytest.mark.parametrize("n_surgery", [6, 2])
def test_surgery_matches_plain_pytorch(tiny_weights, n_surgery):
    model = build_model(TINY, tiny_weights, dense="surgery", surgery_blocks=n_surgery)
    sd = torch.load(tiny_weights)
    torch.manual_seed(1)
    images = torch.randn(2, 3, 64, 64)
    ours = model.backbone_features(images)
    ref = reference_surgery(sd, images, heads=2, layers=3, patch=16, n_surgery=min(n_surgery, 3))
    assert ours.shape == (2, 64, 4, 4)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_weights_file_loads_through_open_clip(tiny_weights):
    model = build_model(TINY, tiny_weights)
    saved = torch.load(tiny_weights)
    for name, value in model.clip.state_dict().items():
        assert torch.equal(value, saved[name]), name
    assert model.config.pretrained == tiny_weights


def test_plain_tokens_equal_open_clip_and_interpolate(tiny_weights):
    model = build_model(TINY, tiny_weights, dense="none")
    visual = model.clip.visual
    visual.output_tokens = True
    images = torch.randn(2, 3, 64, 64)
    _, tokens = visual(images)  # open_clip's own forward, after ln_post
    ours = model.backbone_features(images)
    ours = visual.ln_post(ours.flatten(2).transpose(1, 2))
    torch.testing.assert_close(ours, tokens, rtol=1e-5, atol=1e-6)
    assert model.dense_embeddings(torch.randn(1, 3, 96, 48)).shape == (1, 32, 6, 3)


@pytest.mark.parametrize("projector", ["conv", "transformer"])
def test_projector_is_identity_at_init_and_gates_learn(tiny_weights, projector):
    model = build_model(TINY, tiny_weights, projector=projector)
    images = torch.randn(2, 3, 64, 80)
    trained, baseline = model.dense_embeddings_with_baseline(images)
    assert torch.equal(trained, baseline)
    model.encode_image(images).square().sum().backward()
    gates = [p for n, p in model.named_parameters() if n.endswith("gate")]
    assert gates and all(g.grad is not None and g.grad.abs().item() > 0 for g in gates)
    assert all(p.grad is None for p in model.clip.parameters())


def test_backbone_is_frozen_and_stays_in_eval(tiny_weights):
    model = build_model(TINY, tiny_weights).train()
    assert not any(p.requires_grad for p in model.clip.parameters())
    assert not model.clip.training and model.projector.training
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(model.trainable_state_dict())


def test_encode_text_is_normalised(tiny_weights):
    model = build_model(TINY, tiny_weights)
    emb = model.encode_text(["a photo of a cat.", "a photo of a dog."])
    assert emb.shape == (2, 32)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2))


def test_checkpoint_roundtrip(tiny_weights, tmp_path):
    model = build_model(TINY, tiny_weights)
    with torch.no_grad():
        for p in model.projector.parameters():
            p.add_(0.1)
    config = CheckpointConfig(model.config, step=5)
    ckpt.write_checkpoint(tmp_path, config, model.trainable_state_dict(), None, keep_last=2)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.config == config and checkpoint.directory.name == "step-0000005"
    loaded = checkpoint.model
    images = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(loaded.dense_embeddings(images), model.dense_embeddings(images))
    assert loaded.image_mean == model.image_mean and loaded.patch_size == 16


def test_load_checkpoint_refuses_other_dirs(tmp_path):
    with pytest.raises(TrainError, match="not a tagalign-train run"):
        load_checkpoint(tmp_path)


def test_unknown_model_lists_close_matches():
    with pytest.raises(TrainError, match="close matches: .*ViT-B-16"):
        build_model("ViT-B-61", None)


def test_unknown_pretrained_is_one_line(tmp_path):
    with pytest.raises(TrainError, match="neither a weights file nor a tag"):
        build_model(TINY, str(tmp_path / "missing.pt"))


def test_openai_tag_selects_quickgelu():
    from tagalign_train.backbone import resolve_pretrained

    assert resolve_pretrained("ViT-B-16", "openai") == ("openai", True)
    assert open_clip.get_pretrained_cfg("ViT-B-16", "laion2b_s34b_b88k")
    assert resolve_pretrained("ViT-B-16", "laion2b_s34b_b88k") == ("laion2b_s34b_b88k", False)


def test_maskclip_last_block_attends_to_itself_only(tiny_weights):
    model = build_model(TINY, tiny_weights, dense="maskclip")
    sd = torch.load(tiny_weights)
    images = torch.randn(2, 3, 64, 64)
    x = F.conv2d(images, sd["visual.conv1.weight"], stride=16).flatten(2).transpose(1, 2)
    x = (
        torch.cat([sd["visual.class_embedding"].expand(2, 1, 64), x], 1)
        + sd["visual.positional_embedding"]
    )
    x = _ln(x, sd, "visual.ln_pre")
    for i in range(3):
        p = f"visual.transformer.resblocks.{i}"
        y = _ln(x, sd, p + ".ln_1")
        if i == 2:  # self-only attention = the value path through the out-projection
            c = 64
            v = (
                y @ sd[p + ".attn.in_proj_weight"][2 * c :].T
                + sd[p + ".attn.in_proj_bias"][2 * c :]
            )
            x = x + v @ sd[p + ".attn.out_proj.weight"].T + sd[p + ".attn.out_proj.bias"]
        else:
            x = x + _mha(y, sd, p + ".attn", heads=2)
        x = x + _mlp(_ln(x, sd, p + ".ln_2"), sd, p + ".mlp")
    ref = x[:, 1:].transpose(1, 2).reshape(2, 64, 4, 4)
    torch.testing.assert_close(model.backbone_features(images), ref, rtol=1e-4, atol=1e-5)


def test_open_clip_local_dir(tiny_weights, tmp_path):
    import json

    from tagalign_train.backbone import MODEL_CONFIG_DIR

    cfg = json.loads((MODEL_CONFIG_DIR / f"{TINY}.json").read_text())
    (tmp_path / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": cfg, "preprocess_cfg": {}})
    )
    torch.save(torch.load(tiny_weights), tmp_path / "open_clip_pytorch_model.bin")
    model = build_model(f"local-dir:{tmp_path}", None)
    reference = build_model(TINY, tiny_weights)
    images = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model.dense_embeddings(images), reference.dense_embeddings(images))
    with pytest.raises(TrainError, match="not an open_clip local dir"):
        build_model(f"local-dir:{tmp_path / 'nothing'}", None)


def test_tag_embeddings_are_cached_per_template_set(tiny_weights, tmp_path):
    from tagalign_train.config import ENSEMBLE_TEMPLATES
    from tagalign_train.text import cached_tag_embeddings, embed_tags

    model = build_model(TINY, tiny_weights)
    tags = ["cat", "dog", "red"]
    single = cached_tag_embeddings(model, tags, "fp1", ("a photo of a {}.",), tmp_path)
    torch.testing.assert_close(single, model.encode_text([f"a photo of a {t}." for t in tags]))
    assert len(list(tmp_path.iterdir())) == 1
    again = cached_tag_embeddings(model, tags, "fp1", ("a photo of a {}.",), tmp_path)
    assert torch.equal(single, again) and len(list(tmp_path.iterdir())) == 1
    ens = cached_tag_embeddings(model, tags, "fp1", ENSEMBLE_TEMPLATES, tmp_path)
    torch.testing.assert_close(ens, embed_tags(model.encode_text, tags, ENSEMBLE_TEMPLATES))
    cached_tag_embeddings(model, tags, "fp2", ("a photo of a {}.",), tmp_path)
    assert len(list(tmp_path.iterdir())) == 3
    with pytest.raises(TrainError, match="placeholder"):
        embed_tags(model.encode_text, tags, ("no slot",))
