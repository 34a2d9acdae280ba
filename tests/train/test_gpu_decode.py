"""`--decode-on gpu` (gpu_decode.py), checked on the CPU: the GPU path's code run with device cpu
gives the CPU path's images (same crop box and flip, within interpolation tolerance), through
the real shards, dataset, collate and loader; without CUDA the trainer says so in one line and
trains on the CPU path."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import torch
from cli_checks import run_cli
from PIL import Image
from tagalign_train.data import (
    BatchCollate,
    EncodedTagAlignDataset,
    StepBatches,
    TagAlignDataset,
    index_data,
    join_labels,
    train_transform,
)
from tagalign_train.gpu_decode import DeviceDecodedBatches, DeviceDecoder, GeometryDraw
from tagalign_train.preprocess import NORMALIZATIONS, normalize
from tagparse.reader import load_labels
from test_cli_faults import train_args
from torch.utils.data import DataLoader
from torchvision import transforms as T
from train_helpers import make_tags_db

SIZE = 48
MEAN, STD = NORMALIZATIONS["imagenet"]


def photo_like(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Smooth colour gradients plus noise: JPEG-typical content at a size that needs resizing."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    noisy = base + rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def mixed_world(tmp_path_factory):
    """One shard of 12 photo-like images of several sizes: JPEGs, one PNG, one file that is no
    image (the CPU path's fallback must happen on the GPU path too); and its tags.db."""
    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    samples = {}
    shard = root / "00000.tar"
    with tarfile.open(shard, "w") as tar:
        for i in range(12):
            key = f"{i:04d}"
            img = photo_like(rng, int(rng.integers(60, 160)), int(rng.integers(60, 160)))
            buf = io.BytesIO()
            ext = "png" if i == 3 else "jpg"
            img.save(buf, "PNG" if ext == "png" else "JPEG", quality=90)
            data = b"not an image" if i == 7 else buf.getvalue()
            for name, payload in ((f"{key}.{ext}", data), (f"{key}.txt", b"a red circle")):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            samples[key] = ("a red circle", ["circle"], ["red"])
    return [str(shard)], make_tags_db(root / "tags.db", samples)


def geometry_only(size: int) -> T.Compose:
    """The CPU path's transform up to where the GPU path stops: timm's crop, the flip, uint8."""
    cpu = train_transform(size, MEAN, STD)
    return T.Compose([cpu.transforms[0], cpu.transforms[1], T.PILToTensor()])


def test_gpu_path_on_the_cpu_equals_the_cpu_path(mixed_world):
    shards, db = mixed_world
    labels = load_labels(db)
    index = index_data(shards)
    use, rows, _ = join_labels(index, labels, "skip")
    collate = BatchCollate(labels, ["object", "attribute"])
    batches = StepBatches(len(use), 6, 1, 0, seed=5, start=0, stop=4)
    cpu = DataLoader(
        TagAlignDataset(index, use, rows, geometry_only(SIZE)),
        batch_sampler=batches,
        collate_fn=collate,
    )
    encoded = EncodedTagAlignDataset(
        index, use, rows, GeometryDraw(train_transform(SIZE, MEAN, STD))
    )
    gpu = DeviceDecodedBatches(
        DataLoader(encoded, batch_sampler=batches, collate_fn=collate, num_workers=1),
        DeviceDecoder((SIZE, SIZE), MEAN, STD, torch.device("cpu")),
    )
    for reference, decoded in zip(cpu, gpu, strict=True):
        assert decoded["skipped"] == reference["skipped"]
        assert torch.equal(decoded["targets"], reference["targets"])
        expected = normalize(reference["images"], MEAN, STD)
        assert decoded["images"].shape == expected.shape == (6, 3, SIZE, SIZE)
        # in 0-255 pixel units: Pillow's and torch's antialiased bilinear kernels differ by
        # rounding (seen: mean 0.14-0.17, max 1); a wrong box or flip differs by tens
        diff = ((decoded["images"] - expected) * torch.tensor(STD).view(3, 1, 1) * 255).abs()
        assert diff.mean() < 0.5, diff.mean()
        assert diff.amax() <= 2.01, diff.amax()
    assert (
        sum(r["skipped"] for r in DataLoader(encoded, batch_sampler=batches, collate_fn=collate))
        > 0
    )


@pytest.mark.slow  # one real trainer subprocess: 10-50 s on the loaded 2-core box
def test_decode_on_gpu_without_cuda_is_one_line_and_trains_on_the_cpu(
    world, tiny_weights, tmp_path
):
    out = tmp_path / "run"
    proc = run_cli(train_args(world, tiny_weights, out, "--decode-on", "gpu"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "--decode-on" in line]
    assert lines == [
        "warning: --decode-on gpu: CUDA is not available (training on cpu); decoding on the CPU"
    ]
    assert "done: step 2" in proc.stdout
