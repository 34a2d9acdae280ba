"""Helpers shared by the trainer tests: tiny weights on disk, shards and a tags.db."""

from __future__ import annotations

import open_clip
import tagalign_train.backbone  # noqa: F401  (registers the tiny configs)
import torch

TINY = "tagalign-tiny-ViT"


def save_random_weights(path, model_name: str = TINY, seed: int = 0) -> str:
    """Random weights for `model_name`, written with torch.save like any user checkpoint."""
    torch.manual_seed(seed)
    model = open_clip.create_model(model_name, pretrained=None)
    torch.save(model.state_dict(), path)
    return str(path)


COLORS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 60, 220)}
SHAPES = ("circle", "square", "triangle")


def _draw(shape: str, color: tuple, rng, size: int = 80):
    from PIL import Image, ImageDraw

    background = tuple(int(v) for v in rng.integers(0, 90, 3))
    img = Image.new("RGB", (size, size), background)
    d = ImageDraw.Draw(img)
    a, b = int(rng.integers(4, 20)), int(rng.integers(60, 76))
    if shape == "circle":
        d.ellipse([a, a, b, b], fill=color)
    elif shape == "square":
        d.rectangle([a, a, b, b], fill=color)
    else:
        d.polygon([(a, b), (b, b), ((a + b) // 2, a)], fill=color)
    return img


def make_world(
    root,
    n: int = 48,
    shards: int = 2,
    seed: int = 0,
    corrupt: tuple[str, ...] = (),
    caption_ext: str = "txt",
) -> tuple[list[str], dict[str, tuple[str, list[str], list[str]]]]:
    """img2dataset-style shards of coloured shapes; returns (shard paths, key -> caption, tags)."""
    import io
    import json
    import tarfile

    import numpy as np

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    samples, paths = {}, []
    per = -(-n // shards)
    for s in range(shards):
        path = root / f"{s:05d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(s * per, min(n, (s + 1) * per)):
                key = f"{s:05d}{i:04d}"
                shape = SHAPES[int(rng.integers(len(SHAPES)))]
                color = list(COLORS)[int(rng.integers(len(COLORS)))]
                caption = f"a {color} {shape}"
                buf = io.BytesIO()
                _draw(shape, COLORS[color], rng).save(buf, "JPEG", quality=90)
                data = b"not a jpeg" if key in corrupt else buf.getvalue()
                text = (
                    caption if caption_ext == "txt" else json.dumps({"caption": caption})
                ).encode()
                for name, payload in ((f"{key}.jpg", data), (f"{key}.{caption_ext}", text)):
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
                samples[key] = (caption, [shape], [color])
        paths.append(str(path))
    return paths, samples


def make_tags_db(path, samples: dict, parser: str = "test") -> str:
    """A real tags.db: samples, one parser's parses, and the vocabulary + labels."""
    from tagparse.backends.base import ParseResult, ParserSpec
    from tagparse.db import TagsDB, caption_hash
    from tagparse.vocab import build_vocab

    db = TagsDB.open(path, create=True)
    db.add_samples([(k, caption) for k, (caption, _, _) in samples.items()])
    pid = db.register_parser(ParserSpec(backend=parser, normalizer_version="1"))
    db.write_parses(
        pid, [(caption_hash(c), ParseResult(list(o), list(a))) for c, o, a in samples.values()]
    )
    build_vocab(db, 100, 100, progress=False)
    db.close()
    return str(path)
