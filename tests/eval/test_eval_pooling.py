"""A checkpoint's whole-image embedding for classify/retrieval (`--pooling`, issue 22 item 5):
each pooling against an independent computation, and the flag end to end."""

import json

import pytest
import torch
import torch.nn.functional as F
from cli_checks import in_process
from eval_global import TINY, trained_run, write_images
from tagalign_eval import pooling
from tagalign_eval.embedding import load_encoders
from tagalign_eval.errors import EvalError
from tagalign_train.model import build_model


@pytest.fixture(scope="module")
def fresh(tiny_weights):
    """An untrained model: its projector is the identity and its head the frozen CLIP's."""
    return build_model(TINY, tiny_weights, image_size=32).eval()


def _images(n: int = 3) -> torch.Tensor:
    """At the tiny CLIP's native 64 px, where open_clip's own forward needs no interpolation."""
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def test_class_token_through_an_untrained_head_is_clips_own_embedding(fresh):
    """At initialisation the head is CLIP's ln_post + proj, so the class token through it must be
    exactly what open_clip's own forward computes for the image."""
    images = _images()
    got = pooling.image_embedding_fn(fresh, "class-token")(images)
    with torch.no_grad():
        want = fresh.clip.encode_image(images)
    assert torch.allclose(got, want, atol=1e-5)


def test_patch_mean_is_training_s_embedding(fresh):
    images = _images()
    with torch.no_grad():
        assert torch.equal(
            pooling.image_embedding_fn(fresh, "patch-mean")(images), fresh.encode_image(images)
        )


def test_attention_weights_the_patches_by_their_agreement_with_clips_embedding(fresh, monkeypatch):
    images = _images()
    got = pooling.attention_embedding(fresh, images)
    with torch.no_grad():
        dense = fresh.dense_embeddings(images)  # [B, E, h, w]
        query = F.normalize(fresh.clip.encode_image(images), dim=-1)
    want = []
    for b in range(len(images)):
        patches = dense[b].flatten(1).T  # [hw, E]
        weights = torch.softmax(F.normalize(patches, dim=-1) @ query[b] / 0.1, dim=0)
        want.append((weights[:, None] * patches).sum(0))
    assert torch.allclose(got, torch.stack(want), atol=1e-5)
    # a temperature so high that every patch weighs the same: the patch mean
    monkeypatch.setattr(pooling, "ATTENTION_TEMPERATURE", 1e9)
    with torch.no_grad():
        mean = fresh.encode_image(images)
    assert torch.allclose(pooling.attention_embedding(fresh, images), mean, atol=1e-5)


def test_an_unknown_pooling_is_refused_before_a_model_loads(tmp_path):
    with pytest.raises(EvalError, match="unknown --pooling 'cls'; choose one of patch-mean"):
        load_encoders(tmp_path / "no-run", None, None, torch.device("cpu"), pooling="cls")


def test_classify_records_the_pooling_it_used(tmp_path, tiny_weights):
    run = trained_run(tmp_path / "train", tiny_weights)
    for c in range(3):
        write_images(tmp_path / "val" / f"c{c}", 2, seed=c)
    args = ["tagalign-eval", "classify", tmp_path / "val", "--checkpoint", run]
    for choice in pooling.POOLINGS:
        out = tmp_path / f"{choice}.json"
        proc = in_process(
            [*args, "--pooling", choice, "--workers", "0", "--no-progress"] + ["--out", out]
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(out.read_text())["models"][0]["model"]["pooling"] == choice
