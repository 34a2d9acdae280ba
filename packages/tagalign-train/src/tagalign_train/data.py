"""Training data: images + captions from webdataset shards or a TagAlign CSV, labels from tags.db.

The whole dataset is indexed up front (tar headers only; image bytes are read later by offset),
which gives a map-style dataset with a data order that depends only on the seed: the sample at
global position p is `permutation(seed, epoch)[p mod N]`, and its augmentation is seeded from
(seed, p). A run therefore resumes exactly from a step number, whatever the worker count.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tagparse.inputs import resolve_inputs
from tagparse.reader import TagLabels
from tagparse.samplekey import split_key
from timm.data import create_transform
from timm.data.auto_augment import RandAugment
from timm.data.auto_augment import posterize as timm_posterize
from torch.utils.data import Dataset
from torchvision import transforms as T

from tagalign_train.config import UNLABELED
from tagalign_train.errors import TrainError

log = logging.getLogger(__name__)

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CAPTION_EXTS = ("txt", "json")
MAX_FALLBACKS = 32  # consecutive unreadable samples tolerated before giving up on a position
_CAPTION_NONE, _CAPTION_TXT, _CAPTION_JSON = 0, 1, 2


@dataclass
class SampleIndex:
    """Where every usable sample's bytes live; parallel numpy arrays, one entry per sample."""

    files: list[str]
    file_id: np.ndarray  # int32
    img_offset: np.ndarray  # int64; -1 = the whole file is the image (CSV layout)
    img_size: np.ndarray  # int64
    cap_offset: np.ndarray  # int64
    cap_size: np.ndarray  # int64
    cap_kind: np.ndarray  # int8
    keys: list[str]
    captions: list[str] | None  # CSV layout keeps captions in memory

    def __len__(self) -> int:
        return len(self.keys)


def _index_tar(path: Path, file_id: int, rows: list[tuple]) -> None:
    parts: dict[str, dict[str, tuple[int, int]]] = {}
    order: list[str] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = split_key(member.name)
                if key not in parts:
                    parts[key] = {}
                    order.append(key)
                parts[key][ext] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError, EOFError) as exc:
        log.warning(
            "%s: unreadable tar shard (%s); samples read before the damage are kept", path, exc
        )
    for key in order:
        p = parts[key]
        img = next((p[e] for e in IMAGE_EXTS if e in p), None)
        if img is None:
            continue
        cap_kind, cap = _CAPTION_NONE, (0, 0)
        if "txt" in p:
            cap_kind, cap = _CAPTION_TXT, p["txt"]
        elif "json" in p:
            cap_kind, cap = _CAPTION_JSON, p["json"]
        rows.append((key, file_id, img[0], img[1], cap[0], cap[1], cap_kind))


def index_shards(patterns: list[str]) -> SampleIndex:
    """Index webdataset tar shards (brace patterns allowed, as in `tagparse run`)."""
    try:
        paths = resolve_inputs(patterns)
    except Exception as exc:  # tagparse reports missing inputs with its own one-line error
        raise TrainError(str(exc).splitlines()[0]) from exc
    rows: list[tuple] = []
    for i, path in enumerate(paths):
        _index_tar(path, i, rows)
    return _to_index([str(p) for p in paths], rows, None)


def index_csv(csv_path: Path, root: Path) -> SampleIndex:
    """TagAlign's CSV: `filename,caption`, filenames relative to `root`; the key is the filename."""
    rows, files, captions = [], [], []
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"filename", "caption"} <= set(reader.fieldnames):
            raise TrainError(f"{csv_path}: needs a header with columns filename,caption")
        for row in reader:
            files.append(str(root / row["filename"]))
            captions.append(row["caption"] or "")
            rows.append((row["filename"], len(files) - 1, -1, -1, 0, 0, _CAPTION_NONE))
    return _to_index(files, rows, captions)


def _to_index(files: list[str], rows: list[tuple], captions: list[str] | None) -> SampleIndex:
    cols = list(zip(*rows)) if rows else [[] for _ in range(7)]
    return SampleIndex(
        files,
        np.asarray(cols[1], np.int32),
        np.asarray(cols[2], np.int64),
        np.asarray(cols[3], np.int64),
        np.asarray(cols[4], np.int64),
        np.asarray(cols[5], np.int64),
        np.asarray(cols[6], np.int8),
        list(cols[0]),
        captions,
    )


def index_data(data: list[str], csv_root: str | None = None) -> SampleIndex:
    """Shards, or one `.csv` file (images relative to `csv_root`, default: the CSV's folder)."""
    if len(data) == 1 and data[0].endswith(".csv"):
        path = Path(data[0])
        if not path.is_file():
            raise TrainError(f"{path}: CSV not found")
        return index_csv(path, Path(csv_root) if csv_root else path.parent)
    return index_shards(data)


@dataclass
class JoinStats:
    data_samples: int
    labelled: int
    unlabelled: int
    kept_unlabelled: bool


def join_labels(
    index: SampleIndex, labels: TagLabels, unlabeled: str
) -> tuple[np.ndarray, np.ndarray, JoinStats]:
    """(sample positions used, their label rows or -1, stats); refuses an empty overlap."""
    if unlabeled not in UNLABELED:
        raise TrainError(f"--unlabeled must be skip or keep, got {unlabeled!r}")
    rows_by_key = labels.key_index()
    label_row = np.fromiter((rows_by_key.get(k, -1) for k in index.keys), np.int64, len(index.keys))
    labelled = int((label_row >= 0).sum())
    if labelled == 0:
        data_ex = ", ".join(repr(k) for k in index.keys[:3]) or "none"
        label_ex = ", ".join(repr(k) for k in labels.keys[:3].tolist()) or "none"
        raise TrainError(
            f"no overlap between data keys ({len(index.keys)} samples, e.g. {data_ex}) and "
            f"{labels.path} keys ({len(labels.keys)} labelled, e.g. {label_ex}); "
            "parse the same shards/CSV with `tagparse run`"
        )
    use = np.arange(len(label_row)) if unlabeled == "keep" else np.flatnonzero(label_row >= 0)
    stats = JoinStats(len(label_row), labelled, len(label_row) - labelled, unlabeled == "keep")
    return use, label_row[use], stats


#: The arguments TagAlign's `datasets/builder.py` passes to timm's `create_transform` for
#: training; the image size (224 there) comes from the run, mean/std from the model.
#: `color_jitter` is inert next to RandAugment (timm turns jitter off), as in the paper's runs.
PAPER_AUGMENT: dict[str, Any] = {
    "is_training": True,
    "color_jitter": 0.4,
    "auto_augment": "rand-m9-mstd0.5-inc1",
    "re_prob": 0.25,
    "re_mode": "pixel",
    "re_count": 1,
    "interpolation": "bilinear",
}


def train_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    """The paper's per-image augmentation, timm's own: PIL image -> normalised float tensor.

    timm's RandomResizedCrop (scale 0.08-1, bilinear), horizontal flip, RandAugment (2 ops of
    the increasing-severity set, magnitude 9 with Gaussian noise of std 0.5, filling with the
    mean colour), ToTensor + Normalize(mean, std), then RandomErasing (p 0.25, one box of
    per-pixel normal noise). TagAlign normalises with ImageNet's mean/std (timm's default); here
    they come from the model's preprocessing config, which records that choice. The ops draw
    from Python's, numpy's and torch's global generators: see `seed_augmentation`.
    """
    transform = create_transform(size, mean=tuple(mean), std=tuple(std), **PAPER_AUGMENT)
    for op in next(t for t in transform.transforms if isinstance(t, RandAugment)).ops:
        if op.aug_fn is timm_posterize:
            op.aug_fn = posterize
    return transform


def posterize(img: Image.Image, bits_to_keep: int, **kwargs) -> Image.Image:
    """timm's posterize, keeping 0 bits as the Pillow timm was written for did: a black image.

    PosterizeIncreasing keeps 0 bits at magnitude 10, which m9 with noise of std 0.5 reaches for
    about 1 image in 700; the installed Pillow refuses 0 bits, which would end the run.
    """
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return timm_posterize(img, bits_to_keep, **kwargs)


def seed_augmentation(seed: int) -> None:
    """Seed every generator timm's ops draw from, so an image's augmentation depends only on its
    (up to 64-bit) seed: Python's `random` (crop, op probability and magnitude noise, erasing
    box), numpy's global generator (RandAugment's op choice) and torch's (flip, erasing noise)."""
    lo, hi = seed & 0xFFFFFFFF, seed >> 32
    random.seed(seed)  # MT19937 keyed by the 32-bit words of the seed
    np.random.seed((lo, hi, 1))  # another key: with (lo, hi) numpy would replay Python's stream
    torch.default_generator.manual_seed(lo ^ hi)  # keeps 32 bits; torch.manual_seed costs 25x more


def plain_transform(size: int) -> T.Compose:
    """No augmentation (feature caching): resize the short side and centre-crop, to uint8."""
    return T.Compose(
        [
            T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(size),
            T.PILToTensor(),
        ]
    )


class TagAlignDataset(Dataset):
    """Item (position, seed) -> (image, caption, label row, fallbacks used).

    An unreadable image is skipped in favour of the next sample of the index, deterministically,
    and counted; the batch keeps its size (the global InfoNCE needs equal batches per rank).
    """

    def __init__(
        self,
        index: SampleIndex,
        use: np.ndarray,
        label_rows: np.ndarray,
        transform,
        caption_field: str = "caption",
    ):
        self.index = index
        self.use = use
        self.label_rows = label_rows
        self.transform = transform
        self.caption_field = caption_field
        self._handles: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.use)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handles"] = {}  # file handles stay per process
        return state

    def _read(self, fid: int, offset: int, size: int) -> bytes:
        if offset < 0:
            with open(self.index.files[fid], "rb") as f:
                return f.read()
        f = self._handles.get(fid)
        if f is None:
            f = self._handles[fid] = open(self.index.files[fid], "rb")  # noqa: SIM115 (kept open per worker)
        f.seek(offset)
        data = f.read(size)
        if len(data) != size:
            raise OSError("truncated member")
        return data

    def caption(self, i: int) -> str:
        ix = self.index
        if ix.captions is not None:
            return ix.captions[i]
        kind = int(ix.cap_kind[i])
        if kind == _CAPTION_NONE:
            return ""
        text = self._read(int(ix.file_id[i]), int(ix.cap_offset[i]), int(ix.cap_size[i])).decode(
            "utf-8", "replace"
        )
        if kind == _CAPTION_JSON:
            try:
                meta = json.loads(text)
            except json.JSONDecodeError:
                return ""
            value = meta.get(self.caption_field) if isinstance(meta, dict) else None
            return "" if value is None else str(value)
        return text.strip()

    def load_image(self, i: int) -> Image.Image:
        ix = self.index
        data = self._read(int(ix.file_id[i]), int(ix.img_offset[i]), int(ix.img_size[i]))
        img = Image.open(io.BytesIO(data))
        img.load()
        return img.convert("RGB")

    def __getitem__(self, item: tuple[int, int]):
        """(image tensor, caption, label row, fallbacks used, augmentation seed)."""
        position, seed = item
        for attempt in range(MAX_FALLBACKS):
            j = (position + attempt) % len(self.use)
            i = int(self.use[j])
            try:
                img = self.load_image(i)
                caption = self.caption(i)
            except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
                continue
            seed_augmentation(seed)
            return self.transform(img), caption, int(self.label_rows[j]), attempt, seed
        first = self.index.keys[int(self.use[position % len(self.use)])]
        raise TrainError(
            f"{MAX_FALLBACKS} consecutive unreadable images from {first!r}; check the data files"
        )


class EncodedTagAlignDataset(TagAlignDataset):
    """`--decode-on gpu`: the same items, the image as its bytes and drawn geometry
    (`gpu_decode.GeometryDraw` is the transform); the GPU decodes it in the training process.

    Pillow still reads each header here, so a file that is no image falls back to the next
    sample exactly as on the CPU path; an image in another format is decoded here."""

    def load_image(self, i: int) -> tuple[str, bytes, Image.Image]:
        from tagalign_train.gpu_decode import passes_as_jpeg

        ix = self.index
        data = self._read(int(ix.file_id[i]), int(ix.img_offset[i]), int(ix.img_size[i]))
        img = Image.open(io.BytesIO(data))
        if not passes_as_jpeg(img):
            img.load()
        return ix.keys[i], data, img


class BatchCollate:
    """Stacks a batch and builds multi-hot targets.

    Items are (model-ready image: augmented and normalised by `train_transform`, or cached float
    tokens; caption or cached caption embedding; label row; fallbacks used; seed). With a
    tokenizer, captions also come back tokenized so the training process only runs the text tower.
    """

    def __init__(self, labels: TagLabels, kinds: list[str], tokenizer=None):
        self.csr = [labels.labels[k] for k in kinds]
        self.offsets = np.cumsum([0] + [len(labels.vocab[k]) for k in kinds])
        self.tokenizer = tokenizer  # captions are tokenized here, in the data workers

    @property
    def n_tags(self) -> int:
        return int(self.offsets[-1])

    def targets(self, rows: list[int]) -> torch.Tensor:
        out = torch.zeros(len(rows), self.n_tags)
        for b, row in enumerate(rows):
            if row < 0:
                continue
            for csr, off in zip(self.csr, self.offsets[:-1]):
                out[b, torch.from_numpy(csr.row(row).astype(np.int64) + int(off))] = 1.0
        return out

    def __call__(self, batch):
        images, texts, rows, fallbacks, _seeds = zip(*batch)
        encoded = not isinstance(images[0], torch.Tensor)  # gpu_decode.EncodedImage items
        out = {
            ("encoded" if encoded else "images"): list(images) if encoded else torch.stack(images),
            "targets": self.targets(list(rows)),
            "skipped": int(sum(fallbacks)),
        }
        if isinstance(texts[0], torch.Tensor):
            out["text_emb"] = torch.stack(texts)
        else:
            out["captions"] = list(texts)
            if self.tokenizer is not None:
                out["tokens"] = self.tokenizer(list(texts))
        return out


class StepBatches:
    """Batches of (position, seed) for this rank, from micro-step `start` to `stop`.

    Global micro-batch m covers global positions [m*G, (m+1)*G), G = local batch × world size;
    rank r takes the r-th contiguous block, so the ranks' union is exactly the single-process batch.
    """

    def __init__(
        self, n: int, local_batch: int, world: int, rank: int, seed: int, start: int, stop: int
    ):
        self.n, self.local, self.world, self.rank = n, local_batch, world, rank
        self.seed, self.start, self.stop = seed, start, stop
        self._perm_epoch, self._perm = -1, None

    def __len__(self) -> int:
        return self.stop - self.start

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def positions(self, micro_step: int) -> list[tuple[int, int]]:
        g = self.local * self.world
        first = micro_step * g + self.rank * self.local
        out = []
        for p in range(first, first + self.local):
            epoch, within = divmod(p, self.n)
            out.append(
                (int(self._permutation(epoch)[within]), (self.seed * 1_000_003 + p) % (2**63))
            )
        return out

    def __iter__(self):
        for m in range(self.start, self.stop):
            yield self.positions(m)
