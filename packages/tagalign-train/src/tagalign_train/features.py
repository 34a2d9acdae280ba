"""`--cache-features DIR`: the frozen backbone's dense tokens computed once, for fast ablations.

Images are resized and centre-cropped (no augmentation), so a cached run trains the projector on
fixed views — a different (cheaper) regime than the paper's augmented training. Tokens and caption
embeddings are stored as float16 `.npy` files (memory-mapped when read); the directory name is a
hash of everything they depend on, so a changed model, dense method, size or dataset never reuses
them. Size: N × width × (image_size/patch)² × 2 bytes (ViT-B/16 at 224: 300 kB per image).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tagparse.atomic import atomic_path
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tagalign_train import distributed
from tagalign_train.data import SampleIndex, TagAlignDataset, plain_transform
from tagalign_train.distributed import Dist
from tagalign_train.model import TagAlignModel
from tagalign_train.preprocess import normalize


class CachedFeatureDataset(Dataset):
    """Item (position, seed) -> (tokens [C,h,w], caption embedding [E], label row, 0, seed)."""

    def __init__(self, root: Path):
        self.root = root
        self.feats = None
        self.text = None
        self.rows = np.load(root / "rows.npy")

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["feats"] = state["text"] = None  # memory maps reopen in each worker
        return state

    def _open(self) -> None:
        self.feats = np.load(self.root / "feats.npy", mmap_mode="r")
        self.text = np.load(self.root / "text.npy", mmap_mode="r")

    def __getitem__(self, item: tuple[int, int]):
        if self.feats is None:
            self._open()
        i = item[0]
        return (
            torch.from_numpy(np.asarray(self.feats[i], dtype=np.float32)),
            torch.from_numpy(np.asarray(self.text[i], dtype=np.float32)),
            int(self.rows[i]),
            0,
            item[1],
        )


@dataclass
class FeatureCache:
    root: Path

    def dataset(self) -> CachedFeatureDataset:
        return CachedFeatureDataset(self.root)


@dataclass(frozen=True, eq=False)
class FeatureCacheSpec:
    """What to cache and where: the samples a run uses (`use` positions of `index` and their
    tags.db label rows) under `cache_dir`, computed `batch_size` images at a time. The model's
    own preprocessing decides the image size and normalisation."""

    cache_dir: Path
    index: SampleIndex
    use: np.ndarray
    label_rows: np.ndarray
    batch_size: int
    workers: int


def cache_key(model: TagAlignModel, index: SampleIndex, use: np.ndarray) -> str:
    cfg = model.config
    pre = cfg.preprocessing
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                cfg.name,
                cfg.pretrained,
                cfg.dense,
                cfg.surgery_blocks,
                pre.image_size,
                list(pre.mean),
                list(pre.std),
                index.files,
            ]
        ).encode()
    )
    h.update("\n".join(index.keys).encode())
    h.update(np.ascontiguousarray(use).tobytes())
    return h.hexdigest()[:20]


def _columns(batch: list[tuple]) -> list[tuple]:
    return list(zip(*batch))


@torch.no_grad()
def _compute(
    model: TagAlignModel, spec: FeatureCacheSpec, root: Path, device: torch.device, progress: bool
) -> None:
    pre = model.config.preprocessing
    n = len(spec.use)
    dataset = TagAlignDataset(
        spec.index, spec.use, spec.label_rows, plain_transform(pre.image_size)
    )
    order = [
        [(i, 0) for i in range(s, min(s + spec.batch_size, n))]
        for s in range(0, n, spec.batch_size)
    ]
    loader = DataLoader(dataset, batch_sampler=order, num_workers=spec.workers, collate_fn=_columns)
    grid = pre.image_size // model.patch_size
    with atomic_path(root, directory=True) as tmp:
        feats = np.lib.format.open_memmap(
            tmp / "feats.npy", "w+", np.float16, (n, model.dense.width, grid, grid)
        )
        text = np.lib.format.open_memmap(
            tmp / "text.npy", "w+", np.float16, (n, model.head_proj.shape[1])
        )
        rows = np.empty(n, np.int64)
        pos = 0
        for images, captions, batch_rows, _, _ in tqdm(
            loader, disable=not progress, desc="cache features", unit="batch"
        ):
            x = normalize(torch.stack(images), pre.mean, pre.std).to(device)
            b = len(x)
            feats[pos : pos + b] = model.backbone_features(x).float().cpu().numpy()
            text[pos : pos + b] = model.encode_text(list(captions)).cpu().numpy()
            rows[pos : pos + b] = batch_rows
            pos += b
        feats.flush()
        text.flush()
        np.save(tmp / "rows.npy", rows)
        del feats, text


def build_feature_cache(
    model: TagAlignModel, spec: FeatureCacheSpec, env: Dist, progress: bool = True
) -> FeatureCache:
    """Compute the cache once (rank 0; others wait) or reuse a complete one."""
    root = Path(spec.cache_dir) / f"features-{cache_key(model, spec.index, spec.use)}"
    if env.rank == 0 and not (root / "rows.npy").is_file():
        _compute(model, spec, root, env.device, progress)
    distributed.barrier()
    return FeatureCache(root)
