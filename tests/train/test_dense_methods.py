"""SCLIP, ClearCLIP and NACLIP dense tokens against their formulas written out by hand.

The reference takes the last block's input from open_clip's own forward (a pre-hook), then
computes the block from the raw state dict with per-head loops and plain torch ops, so it shares
no code with tagalign_train's implementation.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from tagalign_train import checkpoint as ckpt
from tagalign_train.checkpoint import load_checkpoint
from tagalign_train.config import DENSE_METHODS
from tagalign_train.dense import LAST_BLOCKS
from tagalign_train.dense_naclip import neighbourhood_prior
from tagalign_train.errors import TrainError
from tagalign_train.model import build_model
from tagalign_train.model_config import CheckpointConfig
from train_helpers import TINY

NEW_METHODS = ("sclip", "clearclip", "naclip")
LAST = "visual.transformer.resblocks.2"  # TINY has 3 blocks, width 64, 2 heads, 16-px patches
HEADS = 2
NACLIP_STD = 5.0  # sinahmr/NACLIP naclip.py: gaussian_std=5., every shipped config


def last_block_input(model, images: torch.Tensor) -> torch.Tensor:
    """What open_clip's own forward feeds the last block, [B,1+hw,C]."""
    seen = []
    block = model.clip.visual.transformer.resblocks[-1]
    handle = block.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    try:
        with torch.no_grad():
            model.clip.visual(images)
    finally:
        handle.remove()
    return seen[0]


def per_head(sd, y):
    """[(q_h, k_h, v_h)] from the packed in-projection, one triple per head."""
    c = y.shape[-1]
    d = c // HEADS
    weight, bias = sd[LAST + ".attn.in_proj_weight"], sd[LAST + ".attn.in_proj_bias"]
    q, k, v = (y @ weight[i * c : (i + 1) * c].T + bias[i * c : (i + 1) * c] for i in range(3))
    return [tuple(t[..., h * d : (h + 1) * d] for t in (q, k, v)) for h in range(HEADS)]


def attention_branch(sd, x, weights_of):
    """out_proj(concat_h weights_of(q_h, k_h) @ v_h) on ln_1(x)."""
    y = F.layer_norm(x, x.shape[-1:], sd[LAST + ".ln_1.weight"], sd[LAST + ".ln_1.bias"], 1e-5)
    outs = [weights_of(q, k) @ v for q, k, v in per_head(sd, y)]
    out = torch.cat(outs, dim=-1)
    return out @ sd[LAST + ".attn.out_proj.weight"].T + sd[LAST + ".attn.out_proj.bias"]


def softmax_of_gram(t, extra=0.0):
    return torch.softmax(t @ t.transpose(1, 2) / math.sqrt(t.shape[-1]) + extra, dim=-1)


def gaussian_by_loops(h: int, w: int, std: float) -> torch.Tensor:
    out = torch.zeros(1 + h * w, 1 + h * w)
    for i in range(h * w):
        for j in range(h * w):
            (ri, ci), (rj, cj) = divmod(i, w), divmod(j, w)
            out[1 + i, 1 + j] = math.exp(-((ri - rj) ** 2 + (ci - cj) ** 2) / (2 * std * std))
    return out


def reference_last_block(method: str, sd, x: torch.Tensor, grid, std=NACLIP_STD):
    if method == "sclip":
        x = x + attention_branch(sd, x, lambda q, k: softmax_of_gram(q) + softmax_of_gram(k))
        z = F.layer_norm(x, x.shape[-1:], sd[LAST + ".ln_2.weight"], sd[LAST + ".ln_2.bias"])
        hidden = F.gelu(z @ sd[LAST + ".mlp.c_fc.weight"].T + sd[LAST + ".mlp.c_fc.bias"])
        return x + hidden @ sd[LAST + ".mlp.c_proj.weight"].T + sd[LAST + ".mlp.c_proj.bias"]
    if method == "clearclip":
        return attention_branch(sd, x, lambda q, k: softmax_of_gram(q))
    omega = gaussian_by_loops(*grid, std) if std else 0.0
    return attention_branch(sd, x, lambda q, k: softmax_of_gram(k, omega))


def as_grid(tokens: torch.Tensor, grid) -> torch.Tensor:
    return tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, *grid)


@pytest.mark.parametrize("method", NEW_METHODS)
def test_matches_the_formula_written_by_hand(tiny_weights, method):
    model = build_model(TINY, tiny_weights, dense=method)
    sd = torch.load(tiny_weights)
    torch.manual_seed(3)
    images = torch.randn(2, 3, 64, 64)
    ref = as_grid(reference_last_block(method, sd, last_block_input(model, images), (4, 4)), (4, 4))
    ours = model.backbone_features(images)
    assert ours.shape == (2, 64, 4, 4)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_naclip_prior_is_what_separates_it_from_plain_kk(tiny_weights):
    """The reference without the Gaussian must miss: the prior is really in the logits."""
    model = build_model(TINY, tiny_weights, dense="naclip")
    sd = torch.load(tiny_weights)
    images = torch.randn(1, 3, 64, 64)
    plain_kk = reference_last_block("naclip", sd, last_block_input(model, images), (4, 4), std=0)
    assert not torch.allclose(model.backbone_features(images), as_grid(plain_kk, (4, 4)), atol=1e-3)


def test_neighbourhood_prior_on_a_non_square_grid():
    prior = neighbourhood_prior((3, 5), 2.0, device=torch.device("cpu"), dtype=torch.float32)
    torch.testing.assert_close(prior, gaussian_by_loops(3, 5, 2.0))
    assert prior[0].abs().sum() == 0 and prior[:, 0].abs().sum() == 0
    torch.testing.assert_close(prior[1:, 1:].diagonal(), torch.ones(15))


@pytest.mark.parametrize("method", NEW_METHODS)
def test_shapes_on_a_non_square_input(tiny_weights, method):
    model = build_model(TINY, tiny_weights, dense=method)
    images = torch.randn(2, 3, 64, 96)
    assert model.backbone_features(images).shape == (2, 64, 4, 6)
    assert model.dense_embeddings(images).shape == (2, 32, 4, 6)


def test_the_methods_differ(tiny_weights):
    images = torch.randn(1, 3, 64, 64)
    feats = {
        m: build_model(TINY, tiny_weights, dense=m).backbone_features(images) for m in NEW_METHODS
    }
    for a in NEW_METHODS:
        for b in NEW_METHODS:
            assert a == b or not torch.allclose(feats[a], feats[b], atol=1e-3), (a, b)


@pytest.mark.parametrize("method", NEW_METHODS)
def test_recorded_in_config_json_and_reloaded(tiny_weights, tmp_path, method):
    model = build_model(TINY, tiny_weights, dense=method)
    with torch.no_grad():
        for p in model.projector.parameters():
            p.add_(0.1)
    ckpt.write_checkpoint(
        tmp_path, CheckpointConfig(model.config, step=3), model.trainable_state_dict(), None, 1
    )
    loaded = load_checkpoint(tmp_path)
    saved = json.loads((loaded.directory / "config.json").read_text())
    assert saved["model"]["dense"] == method
    assert loaded.model.config.dense == method and loaded.model.dense.method == method
    images = torch.randn(1, 3, 64, 80)
    torch.testing.assert_close(
        loaded.model.dense_embeddings(images), model.dense_embeddings(images)
    )


def test_every_choice_has_an_implementation():
    assert set(DENSE_METHODS) == set(LAST_BLOCKS) | {"surgery"}
    with pytest.raises(TrainError, match="unknown dense method 'nope'; choose one of .*naclip"):
        build_model(TINY, None, dense="nope")
