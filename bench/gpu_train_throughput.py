"""GPU training throughput of the paper preset's model (first meant to run through gpu_check.py).

ViT-B/16 (QuickGELU) at 224 px, batch 512, bf16 autocast (the trainer's own `precision_for`),
synthetic in-memory images/captions/targets, 10,000 tags, surgery dense features + conv
projector, both losses, AdamW + grad-clip — the exact `TrainStep` of `tagalign-train`. The towers
are random-init open_clip weights built through the normal `create_model` path with
`pretrained=None` (no weights can be downloaded on the GPU machine; the FLOPs and the speed do
not depend on the weights' values). Prints images/s, the FLOPs of one step (counted by torch's
FlopCounterMode at batch 8, scaled), the implied utilisation of the GPU's dense bf16 peak, and the
hours the paper preset (30,001 steps x 4,096 images) takes on 1 and on 8 such GPUs.

    python bench/gpu_train_throughput.py [--batch 512] [--steps 20] [--peak-tflops 989]

`measure()` is what `bench/gpu_check.py` calls (and, at tiny sizes on the CPU, its --dry-run).
"""

from __future__ import annotations

import time

import torch
from benchargs import OneLineParser, count, finite
from tagalign_train.losses import TagAlignLoss, TagLoss
from tagalign_train.model import build_model
from tagalign_train.optim import param_groups
from tagalign_train.precision import precision_for
from tagalign_train.run import TrainStep
from torch.utils.flop_counter import FlopCounterMode

CONTEXT = 77
PAPER_IMAGES = 30_001 * 4_096  # the paper preset: steps x global batch
H100_BF16_PEAK_TFLOPS = 989.0  # dense bf16, H100/H200 SXM


def make_batch(n: int, size: int, tags: int, device, vocab: int = 49408):
    images = torch.randn(n, 3, size, size, device=device)
    targets = (torch.rand(n, tags, device=device) < 5 / tags).float()
    tokens = torch.randint(1, vocab - 1, (n, CONTEXT), device=device)
    tokens[:, -1] = vocab - 1  # EOT, where open_clip pools the text tower
    return images, targets, tokens


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def measure(
    batch: int = 512,
    steps: int = 20,
    model_name: str = "ViT-B-16-quickgelu",
    tags: int = 10_000,
    device: torch.device | None = None,
    peak_tflops: float = H100_BF16_PEAK_TFLOPS,
    warmup: int = 3,
    flop_batch: int = 8,
) -> dict:
    """Images/s and FLOPs of the trainer's step on synthetic data; a JSON-ready dict."""
    device = device or torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    model = build_model(model_name, None, device=device)
    size, dim = model.config.preprocessing.image_size, model.config.embed_dim
    precision = precision_for(device)
    loss = TagAlignLoss(TagLoss())
    tag_emb = torch.nn.functional.normalize(torch.randn(tags, dim, device=device), dim=-1)
    step = TrainStep(model.train(), loss, tag_emb).to(device)
    opt = torch.optim.AdamW(param_groups([model, loss], 0.05), lr=1e-3, eps=1e-6)
    trainable = [p for p in step.parameters() if p.requires_grad]

    def one(images, targets, tokens) -> None:
        with precision.autocast():
            with torch.no_grad():
                text = model.encode_tokens(tokens).float()
            terms = step(images, targets, text, False)
        precision.backward(terms["loss"])
        precision.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(trainable, 5.0)
        precision.step(opt)
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:
        one(*make_batch(flop_batch, size, tags, device))
    flops_per_image = counter.get_total_flops() / flop_batch

    data = make_batch(batch, size, tags, device)
    for _ in range(warmup):
        one(*data)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        one(*data)
    _sync(device)
    ips = steps * batch / (time.perf_counter() - t0)
    tflops = ips * flops_per_image / 1e12
    with precision.autocast():  # what the trainer's autocast computes matrix products in
        dtype = (torch.ones(2, 2, device=device) @ torch.ones(2, 2, device=device)).dtype
    return {
        "device": device_name(device),
        "model": model_name,
        "weights": "random init (open_clip create_model, pretrained=None)",
        "image_size": size,
        "batch": batch,
        "steps": steps,
        "autocast_dtype": str(dtype).removeprefix("torch."),
        "losses": ["tag", "itc"],
        "tags": tags,
        "images_per_s": ips,
        "gflop_per_image": flops_per_image / 1e9,
        "achieved_tflops": tflops,
        "peak_tflops": peak_tflops,
        "utilisation": tflops / peak_tflops,
        "paper_preset_hours_1gpu": PAPER_IMAGES / ips / 3600,
        "paper_preset_hours_8gpu_ideal": PAPER_IMAGES / ips / 3600 / 8,
        "peak_memory_gib": (
            torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        ),
    }


def main() -> None:
    ap = OneLineParser()
    ap.add_argument("--batch", type=count(), default=512)
    ap.add_argument("--steps", type=count(), default=20)
    ap.add_argument(
        "--peak-tflops",
        type=finite(0, low_open=True),
        default=H100_BF16_PEAK_TFLOPS,
        help="dense bf16 peak (H100/H200 SXM: 989)",
    )
    args = ap.parse_args()
    r = measure(args.batch, args.steps, peak_tflops=args.peak_tflops)
    print(f"{r['device']}: ViT-B/16 224 px, batch {r['batch']}, {r['autocast_dtype']}, synthetic")
    print(f"images/s                     {r['images_per_s']:10.1f}")
    print(f"GFLOP per image (fwd+bwd)    {r['gflop_per_image']:10.1f}")
    print(f"achieved TFLOP/s             {r['achieved_tflops']:10.1f}")
    print(f"utilisation of {r['peak_tflops']:.0f} TFLOP/s  {r['utilisation']:10.1%}")
    print(f"paper preset on 1 GPU (h)    {r['paper_preset_hours_1gpu']:10.1f}")
    print(f"paper preset on 8 GPUs (h)   {r['paper_preset_hours_8gpu_ideal']:10.1f}   (ideal)")
    print(f"peak memory (GiB)            {r['peak_memory_gib']:10.1f}")


if __name__ == "__main__":
    main()
