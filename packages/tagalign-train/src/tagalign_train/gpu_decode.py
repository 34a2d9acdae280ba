"""`--decode-on gpu`: JPEG decoding and the random resized crop on the GPU.

A frozen-backbone step on a GPU outruns the CPU's JPEG decoding (bench/RESULTS.md, issue 5), so
this path moves the two costliest per-image stages off the data workers. The workers only read
each image's bytes and its header (size, format) and draw the crop box and the flip exactly as the
CPU path draws them (timm's RandomResizedCrop parameters, torchvision's flip coin, from the
generators `seed_augmentation` seeded): the geometry of every image is the CPU path's, and a run
resumes exactly. The training process then decodes the batch with `torchvision.io.decode_jpeg` on
the GPU, crops, resizes (bilinear, antialiased, as Pillow's resize), flips and normalises it.

RandAugment and RandomErasing (timm's Pillow/per-image CPU ops) are not applied on this path: it
is the crop + flip recipe of DALI-style pipelines, lighter than the paper's; use the CPU path to
reproduce the paper. An image that is not a JPEG (PNG, WebP) is decoded in the worker and only
cropped on the GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from tagalign_train.errors import TrainError
from tagalign_train.preprocess import normalize

log = logging.getLogger(__name__)


@dataclass
class EncodedImage:
    """One sample as a worker hands it over: the JPEG bytes (or, for another format, the decoded
    uint8 CHW image) and the crop box (top, left, height, width) and flip drawn for it."""

    key: str
    data: torch.Tensor  # 1-D uint8 JPEG bytes, or uint8 [3, H, W] when decoded already
    box: tuple[int, int, int, int]
    flip: bool

    @property
    def is_jpeg(self) -> bool:
        return self.data.dim() == 1


class GeometryDraw:
    """Worker side: the crop box and the flip of the CPU path's transform, drawn the same way.

    `cpu_transform` is `train_transform(...)`; its first two stages are timm's
    RandomResizedCropAndInterpolation and torchvision's RandomHorizontalFlip. Drawing their
    parameters in their order from the same seeded generators gives the CPU path's geometry.
    """

    def __init__(self, cpu_transform):
        self.crop, self.flip = cpu_transform.transforms[0], cpu_transform.transforms[1]
        self.size = self.crop.size

    def __call__(self, sample: tuple[str, bytes, Image.Image]) -> EncodedImage:
        """(key, file bytes, the image opened by Pillow: header only for a JPEG it can pass on
        as bytes, decoded otherwise)."""
        key, data, image = sample
        box = self.crop.get_params(image, self.crop.scale, self.crop.ratio)
        flip = bool(torch.rand(1) < self.flip.p)
        if passes_as_jpeg(image):
            payload = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        else:
            payload = TF.pil_to_tensor(image.convert("RGB"))
        return EncodedImage(key, payload, tuple(int(v) for v in box), flip)


def passes_as_jpeg(image: Image.Image) -> bool:
    """A JPEG in RGB or greyscale goes to the GPU decoder as bytes (CMYK and other formats are
    decoded by Pillow in the worker)."""
    return image.format == "JPEG" and image.mode in ("RGB", "L")


class DeviceDecoder:
    """Training-process side: a batch of EncodedImage -> normalised float images on `device`."""

    def __init__(self, size: tuple[int, int], mean, std, device: torch.device):
        self.size, self.mean, self.std, self.device = list(size), mean, std, device

    def decode(self, items: list[EncodedImage]) -> list[torch.Tensor]:
        """uint8 [3, H, W] images on the device; JPEGs decoded there in one batched call."""
        jpegs = [i for i, item in enumerate(items) if item.is_jpeg]
        out: list[torch.Tensor | None] = [
            None if item.is_jpeg else item.data.to(self.device, non_blocking=True) for item in items
        ]
        if jpegs:
            data = [items[i].data for i in jpegs]
            try:
                decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
            except RuntimeError:
                decoded = [self._decode_one(items[i]) for i in jpegs]
            for i, image in zip(jpegs, decoded):
                out[i] = image
        return out

    def _decode_one(self, item: EncodedImage) -> torch.Tensor:
        """One image after the batch failed: on the device, else on the CPU, else a clear stop."""
        for device in (self.device, torch.device("cpu")):
            try:
                return decode_jpeg(item.data, mode=ImageReadMode.RGB, device=device).to(self.device)
            except RuntimeError:
                continue
        raise TrainError(
            f"{item.key}: its JPEG header reads but its data does not decode; remove the sample "
            "or train with --decode-on cpu, which skips unreadable images"
        )

    def crop(self, image: torch.Tensor, item: EncodedImage) -> torch.Tensor:
        """The CPU path's resized crop and flip of one decoded image, as float in [0, 255]."""
        top, left, height, width = item.box
        patch = image[:, top : top + height, left : left + width].unsqueeze(0).float()
        patch = torch.nn.functional.interpolate(
            patch, size=self.size, mode="bilinear", align_corners=False, antialias=True
        )[0]
        return patch.flip(-1) if item.flip else patch

    def __call__(self, batch: dict) -> dict:
        items = batch.pop("encoded")
        images = torch.stack([self.crop(img, it) for img, it in zip(self.decode(items), items)])
        batch["images"] = normalize(images.round_().clamp_(0, 255).div_(255.0), self.mean, self.std)
        return batch


class DeviceDecodedBatches:
    """The DataLoader with each batch's images decoded on the device as it is taken."""

    def __init__(self, loader, decoder: DeviceDecoder):
        self.loader, self.decoder = loader, decoder

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield self.decoder(batch)


def resolve_decode_on(requested: str, device: torch.device, cached_features: bool) -> str:
    """The decode path a run uses: `gpu` needs CUDA (else one line and the CPU path) and means
    nothing with cached features (the cache is built once, without augmentation)."""
    if requested != "gpu":
        return "cpu"
    if device.type != "cuda":
        log.warning(
            "--decode-on gpu: CUDA is not available (training on %s); decoding on the CPU", device
        )
        return "cpu"
    if cached_features:
        log.warning("--decode-on gpu: --cache-features trains from cached features; ignored")
        return "cpu"
    log.info(
        "--decode-on gpu: JPEG decoding, crop and flip on %s; RandAugment and RandomErasing "
        "are not applied on this path",
        device,
    )
    return "gpu"
