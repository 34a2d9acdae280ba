"""GPU training throughput of the paper preset's model (NOT run in the session that wrote it).

ViT-B/16 (QuickGELU, random weights: no download) at 224 px, batch 512, bf16 autocast, synthetic
in-memory images/captions/targets, 10,000 tags, surgery dense features + conv projector, both
losses, AdamW + grad-clip — the exact `TrainStep` of `tagalign-train`. Prints images/s, the FLOPs
of one step (counted by torch's FlopCounterMode at batch 8, scaled), the implied utilisation of
the GPU's dense bf16 peak, and the hours the paper preset (30,001 steps × 4,096 images) takes on
1 and on 8 such GPUs.

    python bench/gpu_train_throughput.py [--batch 512] [--steps 20] [--peak-tflops 989]
"""

from __future__ import annotations

import time

import torch
from benchargs import OneLineParser, count, finite
from tagalign_train.losses import TagAlignLoss, TagLoss
from tagalign_train.model import build_model
from tagalign_train.optim import param_groups
from tagalign_train.run import TrainStep
from torch.utils.flop_counter import FlopCounterMode

TAGS, CONTEXT = 10_000, 77


def make_batch(n: int, device, vocab: int = 49408):
    images = torch.randn(n, 3, 224, 224, device=device)
    targets = (torch.rand(n, TAGS, device=device) < 5 / TAGS).float()
    tokens = torch.randint(1, vocab - 1, (n, CONTEXT), device=device)
    tokens[:, -1] = vocab - 1  # EOT, where open_clip pools the text tower
    return images, targets, tokens


def main() -> None:
    ap = OneLineParser()
    ap.add_argument("--batch", type=count(), default=512)
    ap.add_argument("--steps", type=count(), default=20)
    ap.add_argument(
        "--peak-tflops",
        type=finite(0, low_open=True),
        default=989.0,
        help="dense bf16 peak (H100/H200 SXM: 989)",
    )
    args = ap.parse_args()
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    model = build_model("ViT-B-16-quickgelu", None, device=device)
    loss = TagAlignLoss(TagLoss())
    tag_emb = torch.nn.functional.normalize(torch.randn(TAGS, 512, device=device), dim=-1)
    step = TrainStep(model.train(), loss, tag_emb).to(device)
    opt = torch.optim.AdamW(param_groups([model, loss], 0.05), lr=1e-3, eps=1e-6)
    trainable = [p for p in step.parameters() if p.requires_grad]

    def one(images, targets, tokens) -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            with torch.no_grad():
                text = model.clip.encode_text(tokens).float()
            terms = step(images, targets, text, False)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(trainable, 5.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    small = make_batch(8, device)
    with FlopCounterMode(display=False) as counter:
        one(*small)
    flops_per_image = counter.get_total_flops() / 8

    batch = make_batch(args.batch, device)
    for _ in range(3):
        one(*batch)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        one(*batch)
    torch.cuda.synchronize()
    ips = args.steps * args.batch / (time.perf_counter() - t0)
    tflops = ips * flops_per_image / 1e12
    paper_images = 30_001 * 4_096
    print(
        f"{torch.cuda.get_device_name()}: ViT-B/16 224 px, batch {args.batch}, bf16, synthetic data"
    )
    print(f"images/s                     {ips:10.1f}")
    print(f"GFLOP per image (fwd+bwd)    {flops_per_image / 1e9:10.1f}")
    print(f"achieved TFLOP/s             {tflops:10.1f}")
    print(f"utilisation of {args.peak_tflops:.0f} TFLOP/s  {tflops / args.peak_tflops:10.1%}")
    print(f"paper preset on 1 GPU (h)    {paper_images / ips / 3600:10.1f}")
    print(f"paper preset on 8 GPUs (h)   {paper_images / ips / 3600 / 8:10.1f}   (ideal scaling)")
    print(f"peak memory (GiB)            {torch.cuda.max_memory_allocated() / 2**30:10.1f}")


if __name__ == "__main__":
    main()
