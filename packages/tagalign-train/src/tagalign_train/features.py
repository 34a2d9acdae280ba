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
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tagalign_train.data import SampleIndex, TagAlignDataset, normalize_batch, plain_transform


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


def cache_key(model, index: SampleIndex, use: np.ndarray, image_size: int) -> str:
    cfg = model.config
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                cfg["model"],
                cfg["pretrained"],
                cfg["dense"],
                cfg["surgery_blocks"],
                image_size,
                cfg["preprocessing"]["mean"],
                cfg["preprocessing"]["std"],
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
    model,
    index: SampleIndex,
    use: np.ndarray,
    label_rows: np.ndarray,
    root: Path,
    *,
    image_size: int,
    mean,
    std,
    batch_size: int,
    workers: int,
    device,
    progress: bool,
) -> None:
    dataset = TagAlignDataset(index, use, label_rows, plain_transform(image_size))
    order = [
        [(i, 0) for i in range(s, min(s + batch_size, len(use)))]
        for s in range(0, len(use), batch_size)
    ]
    loader = DataLoader(dataset, batch_sampler=order, num_workers=workers, collate_fn=_columns)
    grid = image_size // model.patch_size
    tmp = root.with_name(root.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    feats = np.lib.format.open_memmap(
        tmp / "feats.npy", "w+", np.float16, (len(use), model.dense.width, grid, grid)
    )
    text = np.lib.format.open_memmap(
        tmp / "text.npy", "w+", np.float16, (len(use), model.head_proj.shape[1])
    )
    rows = np.empty(len(use), np.int64)
    pos = 0
    for images, captions, batch_rows, _, _ in tqdm(
        loader, disable=not progress, desc="cache features", unit="batch"
    ):
        x = normalize_batch(torch.stack(images), mean, std).to(device)
        n = len(x)
        feats[pos : pos + n] = model.backbone_features(x).float().cpu().numpy()
        text[pos : pos + n] = model.encode_text(list(captions)).cpu().numpy()
        rows[pos : pos + n] = batch_rows
        pos += n
    feats.flush()
    text.flush()
    np.save(tmp / "rows.npy", rows)
    del feats, text
    os.replace(tmp, root)


def build_feature_cache(
    model,
    index: SampleIndex,
    use: np.ndarray,
    label_rows: np.ndarray,
    cache_dir: Path,
    *,
    image_size: int,
    mean,
    std,
    batch_size: int,
    workers: int,
    device,
    rank: int = 0,
    world: int = 1,
    progress: bool = True,
) -> FeatureCache:
    """Compute the cache once (rank 0; others wait) or reuse a complete one."""
    root = Path(cache_dir) / f"features-{cache_key(model, index, use, image_size)}"
    if rank == 0 and not (root / "rows.npy").is_file():
        _compute(
            model,
            index,
            use,
            label_rows,
            root,
            image_size=image_size,
            mean=mean,
            std=std,
            batch_size=batch_size,
            workers=workers,
            device=device,
            progress=progress,
        )
    if world > 1:
        dist.barrier()
    return FeatureCache(root)
