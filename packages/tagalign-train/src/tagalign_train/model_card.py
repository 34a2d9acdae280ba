"""The model card (README.md) `tagalign-train push` writes: what the shared projector sits on,
what it was trained with, and how to load it, in the Hub's model-card format (YAML front
matter, then Markdown)."""

from __future__ import annotations

import hashlib

from tagalign_train.model_config import CheckpointConfig


def model_card(
    config: CheckpointConfig, repo_id: str, eval_table: str | None, *, weights: bytes
) -> str:
    """The card for the checkpoint `config` describes (its `model.safetensors` bytes are
    `weights`); `eval_table` is tagalign-eval's Markdown table, if there is one."""
    model, pre = config.model, config.model.preprocessing
    hub = f"hf-hub:{repo_id}"
    train = config.train
    lines = [
        "---",
        "library_name: tagalign-train",
        "license: apache-2.0",
        "tags: [tagalign, open_clip, zero-shot-semantic-segmentation, open-vocabulary]",
        "---",
        "",
        f"# {repo_id}",
        "",
        (
            "A TagAlign projector (arXiv 2312.14149) trained with `tagalign-train` on a frozen "
            "open_clip model. It holds the trainable weights only; the frozen CLIP comes from "
            "its own source (below)."
        ),
        "",
        "## Use",
        "",
        "```",
        f"tagalign-eval predict photo.jpg --classes cat,sofa --out pred/ --checkpoint {hub}",
        f"tagalign-eval voc --data-root data/ --checkpoint {hub}",
        "```",
        "",
        "```python",
        "from tagalign_train.checkpoint import load_checkpoint",
        f'model = load_checkpoint("{hub}").model',
        "```",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{model.name}` (open_clip) |",
        f"| base weights | `{model.pretrained}` |",
        f"| dense features | `{model.dense}` |",
        f"| projector | `{model.projector}` ({model.width} → {model.embed_dim}) |",
        f"| image size | {pre.image_size} px, {pre.normalization} mean/std |",
        f"| weights | `model.safetensors`, SHA-256 `{hashlib.sha256(weights).hexdigest()}` |",
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| steps | {config.step} |",
        f"| global batch | {config.global_batch} ({config.world_size} process(es)) |",
        f"| learning rate | {config.effective_lr} |",
    ]
    keys = ("preset", "tag_kinds", "tag_loss", "tag_softmax", "tag_weight", "itc_weight")
    for key in (*keys, "attribute_weight") if train else ():
        lines.append(f"| {key.replace('_', ' ')} | `{getattr(train, key)}` |")
    lines += ["", "## Tag vocabulary", ""]
    if config.vocab is None:
        lines.append("No vocabulary recorded (a checkpoint written outside the trainer).")
    else:
        vocab = config.vocab
        sizes = ", ".join(f"{len(vocab.tags[k])} {k}s" for k in vocab.kinds)
        lines += [
            (
                f"{len(vocab.tag_list)} tags ({sizes}) from a tags.db vocabulary with "
                f"fingerprint `{vocab.fingerprint}` (tagparse's hash of the vocabulary; "
                "`config.json` lists every tag)."
            ),
            "",
            "First tags: "
            + ", ".join(f"`{t}`" for t in vocab.tag_list[:20])
            + (", ..." if len(vocab.tag_list) > 20 else ""),
        ]
    lines += ["", "## Evaluation", ""]
    lines.append(
        eval_table.strip()
        if eval_table
        else "Not evaluated yet: no tagalign-eval results.json was in the run folder."
    )
    return "\n".join(lines) + "\n"
