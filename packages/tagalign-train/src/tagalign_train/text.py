"""Tag text embeddings from the frozen text tower, cached on disk.

The cache key covers everything the embeddings depend on: model, weights (a weights file also by
size and mtime), the vocabulary fingerprint and the templates; a different vocabulary or template
set never reuses a stale file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tagparse.atomic import atomic_path

from tagalign_train.errors import TrainError


def _file_identity(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def _weights_identity(model_name: str, pretrained: str) -> str:
    """A weights file (or an open_clip local dir) is identified by path, size and mtime."""
    if model_name.startswith("local-dir:"):
        folder = Path(model_name[len("local-dir:") :])
        return ";".join(_file_identity(p) for p in sorted(folder.iterdir()) if p.is_file())
    if os.path.isfile(pretrained):
        return _file_identity(Path(pretrained))
    return pretrained


def cache_key(
    model_name: str,
    pretrained: str,
    vocab_fingerprint: str,
    tags: list[str],
    templates: tuple[str, ...],
) -> str:
    payload = json.dumps(
        [
            model_name,
            _weights_identity(model_name, pretrained),
            vocab_fingerprint,
            list(templates),
            hashlib.sha256("\n".join(tags).encode()).hexdigest(),
        ]
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def embed_tags(encode_text, tags: list[str], templates: tuple[str, ...]) -> torch.Tensor:
    """Mean over templates of normalised embeddings, renormalised: [K,E]."""
    if not templates or any("{}" not in t for t in templates):
        raise TrainError(f"every template needs a '{{}}' placeholder, got {list(templates)}")
    per_template = [encode_text([t.format(tag) for tag in tags]) for t in templates]
    return F.normalize(torch.stack(per_template).mean(0), dim=-1)


def cached_tag_embeddings(
    model,
    tags: list[str],
    vocab_fingerprint: str,
    templates: tuple[str, ...],
    cache_dir: Path | None,
) -> torch.Tensor:
    """Tag embeddings for `model` (a TagAlignModel), read from / written to `cache_dir`."""
    if cache_dir is None:
        return embed_tags(model.encode_text, tags, templates)
    cfg = model.config
    key = cache_key(cfg.name, cfg.pretrained, vocab_fingerprint, tags, templates)
    path = Path(cache_dir) / f"tag-embeddings-{key}.safetensors"
    if path.is_file():
        emb = load_file(str(path))["embeddings"]
        if emb.shape[0] == len(tags):
            return emb.to(model.head_proj.device)
    emb = embed_tags(model.encode_text, tags, templates)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({"embeddings": emb.detach().cpu().contiguous()}, str(tmp))
    return emb
