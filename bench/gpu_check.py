"""One prepared GPU run (issue 23): every GPU path measured in one command, no typing.

    bash bench/gpu_check.sh                          # on the GPU machine (installs, then this)
    python bench/gpu_check.py [--dry-run] [--out DIR]

Steps, in order, each in its own subprocess with its own time budget (a step that runs over is
killed and recorded as `timeout`; the others still run). Each step's result is added to
`DIR/gpu_check.json` as it finishes (written atomically: a kill leaves the previous version):

  env               versions (python, torch, CUDA, GPU, torchvision, timm, transformers, open_clip,
                    NCCL, DALI) and this card's measured bf16 matmul and copy rates
  train_throughput  bench/gpu_train_throughput.measure: ViT-B/16, batch 512, bf16, both losses
  eval_throughput   bench/gpu_eval_throughput.measure: 500 VOC-sized images, sliding windows
                    (fp32 and bf16 autocast)
  toy_torchrun      a collective through `torch.distributed.run` (= torchrun) on NCCL, then a
                    200-step toy run through `torchrun --nproc-per-node 1`, its checkpoint
                    evaluated with `tagalign-eval` on the GPU and on the CPU (|dmIoU| <= 0.1)
  data_path         images/s of the trainer's data path with --workers N, CPU decode vs
                    `--decode-on gpu`, against train_throughput's in-memory ceiling
  estimates         the CC12M hours of bench/RESULTS.md recomputed from the figures above

ViT-B/16 weights are not on the GPU machine (no network): its towers are random-init open_clip
weights built through the normal `create_model` path with `pretrained=None`; speed and FLOPs do
not depend on the weights' values. `--dry-run` runs every step on the CPU at tiny sizes (the test
suite runs it, so this script cannot rot between GPU runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "tests" / "train")]  # bench modules, train_helpers

from benchargs import OneLineParser  # found through the path set above

#: (step, time budget in seconds on the GPU, on the CPU dry run). The GPU budgets sum to 465 s,
#: inside the 8 minutes one H100 is lent for, installation included.
STEPS = (
    ("env", 45, 60),
    ("train_throughput", 90, 90),
    ("eval_throughput", 90, 90),
    ("toy_torchrun", 150, 240),
    ("data_path", 75, 120),
    ("estimates", 15, 30),
)
PAPER_IMAGES = 30_001 * 4_096
CC12M_CAPTIONS = 12.4e6
MIOU_TOLERANCE = 0.1


# --- the JSON file ----------------------------------------------------------------------------


def write_json_atomic(path: Path, data: dict) -> None:
    """Write `data` next to `path`, then rename over it: a reader or a kill sees old or new."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_report(out: Path) -> dict:
    path = out / "gpu_check.json"
    return json.loads(path.read_text()) if path.is_file() else {"steps": {}}


# --- the steps (each runs in its own process: `--step NAME`) ----------------------------------


def device_for(dry_run: bool):
    import torch

    return torch.device("cpu" if dry_run else "cuda")


def step_env(out: Path, dry_run: bool) -> dict:
    """Versions first, so a failure further on can be read against them; and the card's own
    matmul and copy rates, which the estimates use in place of spec-sheet figures."""
    import importlib.metadata as md
    import platform

    import torch

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    cuda = torch.cuda.is_available()
    device = device_for(dry_run)
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cuda_available": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
        "gpu_memory_gib": torch.cuda.get_device_properties(0).total_memory / 2**30
        if cuda
        else None,
        "bf16_supported": bool(cuda and torch.cuda.is_bf16_supported()),
        "nccl": ".".join(map(str, torch.cuda.nccl.version())) if cuda else None,
        "cpu_cores": len(os.sched_getaffinity(0)),
        "packages": {
            n: version(n)
            for n in (
                "torchvision",
                "timm",
                "transformers",
                "open_clip_torch",
                "huggingface_hub",
                "safetensors",
                "sqlalchemy",
                "numpy",
                "pillow",
                "nvidia-dali-cuda120",
                "tagparse",
                "tagalign-train",
                "tagalign-eval",
                "tagalign-toy",
            )
        },
        "device_used": str(device),
    }
    if cuda and not dry_run and not info["bf16_supported"]:
        info["note"] = "no bf16 on this card: the trainer falls back to fp16 + GradScaler"
    n = 256 if dry_run else 8192
    dtype = torch.float32 if dry_run else torch.bfloat16
    a = torch.randn(n, n, device=device, dtype=dtype)
    info["matmul_tflops_measured"] = _timed(lambda: a @ a, device, 2 * n**3) / 1e12
    x = torch.empty(2**24 if dry_run else 2**30, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    info["copy_tb_per_s_measured"] = _timed(lambda: y.copy_(x), device, 2 * x.numel()) / 1e12
    return info


def _timed(fn, device, work: float, repeats: int = 10) -> float:
    """`work` units per second of `fn` (mean of `repeats` runs after three warm-ups)."""
    import torch

    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return work * repeats / (time.perf_counter() - t0)


def peak_tflops(report: dict) -> float:
    """The card's dense bf16 peak: the spec sheet's for H100/H200, else the measured matmul."""
    env = report["steps"].get("env", {}).get("result") or {}
    gpu = env.get("gpu") or ""
    if "H100" in gpu or "H200" in gpu:
        return 989.0
    return env.get("matmul_tflops_measured") or 989.0


def step_train_throughput(out: Path, dry_run: bool) -> dict:
    from gpu_train_throughput import measure

    device = device_for(dry_run)
    if dry_run:
        import tagalign_train.backbone  # noqa: F401  (registers the tiny configs)

        return measure(8, 2, "tagalign-tiny-ViT", 50, device, peak_tflops(read_report(out)), 1, 2)
    return measure(512, 20, "ViT-B-16-quickgelu", 10_000, device, peak_tflops(read_report(out)))


def step_eval_throughput(out: Path, dry_run: bool) -> dict:
    from gpu_eval_throughput import measure

    device = device_for(dry_run)
    if dry_run:
        import tagalign_train.backbone  # noqa: F401

        tiny = {"short_side": 64, "max_long_side": 96, "crop": 64, "stride": 32}
        runs = [measure(4, 4, 2, False, device, "tagalign-tiny-ViT", (48, 64), tiny)]
    else:
        runs = [measure(500, 64, 8, amp, device) for amp in (False, True)]
    return {"fp32": runs[0], "bf16": runs[-1] if len(runs) > 1 else None}


def toy_world(root: Path, dry_run: bool) -> tuple[Path, Path, str]:
    """(world folder, tags.db from the generator's gold tags, the shipped toy CLIP `--model`)."""
    from tagalign_toy.generator import WorldSpec, generate_world
    from tagalign_toy.gold_backend import NAME, register
    from tagalign_toy.pretrain import toy_clip_weights
    from tagalign_toy.toy_clip import model_spec
    from tagparse.db import TagsDB
    from tagparse.pipeline import run_parse
    from tagparse.vocab import build_vocab

    spec = (
        WorldSpec(seed=0, n_train=64, n_val=4, shard_size=32, n_single=4, n_pairs=4)
        if dry_run
        else WorldSpec(seed=0, n_train=1200, n_val=60, shard_size=400, n_single=8, n_pairs=8)
    )
    world = generate_world(root / "world", spec, workers=1 if dry_run else 8, progress=False)
    register()
    db = root / "tags.db"
    shards = sorted(str(p) for p in (world / "train").glob("*.tar"))
    run_parse(db, shards, NAME, {"gold": str(world / "train" / "gold.jsonl")}, progress=False)
    tags = TagsDB.open(db)
    build_vocab(tags, 40, 30, progress=False)
    tags.close()
    weights = toy_clip_weights(root / "cache", progress=False)
    return world, db, model_spec(weights)


def console(name: str) -> str:
    """The console script beside this Python (the venv's), as a user's shell would find it."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else name


def run_logged(args: list[str], log: Path, env: dict | None = None) -> None:
    with open(log, "w") as f:
        proc = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        tail = log.read_text()[-1500:]
        raise RuntimeError(f"`{' '.join(args[:4])} ...` exited {proc.returncode}: {tail}")


def torchrun(*args: str) -> list[str]:
    """`torchrun --nproc-per-node 1 ...` (torch.distributed.run is torchrun's own module; the
    venv made with --system-site-packages has no torchrun script of its own)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", *args]


def step_collective(out: Path, dry_run: bool) -> dict:
    """Run under torchrun: join the group on NCCL (gloo on the CPU) and all-reduce a tensor."""
    import torch
    import torch.distributed as dist

    backend = "gloo" if dry_run else "nccl"
    dist.init_process_group(backend)
    device = device_for(dry_run)
    x = torch.full((1024,), float(dist.get_rank() + 1), device=device)
    dist.all_reduce(x)
    result = {"backend": dist.get_backend(), "world": dist.get_world_size(), "sum": float(x[0])}
    dist.destroy_process_group()
    return result


def step_toy_torchrun(out: Path, dry_run: bool) -> dict:
    work = out / "toy"
    work.mkdir(parents=True, exist_ok=True)
    run_logged(
        torchrun(__file__, "--step", "collective", "--out", str(out), *dry_flag(dry_run)),
        work / "collective.log",
    )
    collective = json.loads((out / "steps" / "collective.json").read_text())
    world, db, model = toy_world(work, dry_run)
    steps, batch, workers = (4, 8, 0) if dry_run else (200, 64, 8)
    run = work / "run"
    t0 = time.perf_counter()
    run_logged(
        torchrun(
            "-m",
            "tagalign_train.cli",
            "--preset",
            "toy",
            "--model",
            model,
            "--image-size",
            "96",
            "--labels",
            str(db),
            *[a for s in sorted((world / "train").glob("*.tar")) for a in ("--data", str(s))],
            "--out",
            str(run),
            "--steps",
            str(steps),
            "--batch-size",
            str(batch),
            "--workers",
            str(workers),
            "--text-cache",
            str(work / "text"),
            "--no-progress",
        ),
        work / "train.log",
    )
    train_s = time.perf_counter() - t0
    from tagalign_toy.stages import protocol_flags

    miou = {}
    for device in ("cpu", "cpu" if dry_run else "cuda"):
        result = work / f"eval-{device}-{len(miou)}.json"
        run_logged(
            [console("tagalign-eval"), "toyshapes", "--checkpoint", str(run)]
            + ["--data-root", str(world), *protocol_flags(), "--device", device]
            + ["--workers", "0", "--out", str(result)],
            work / f"eval-{device}.log",
        )
        miou["gpu" if len(miou) else "cpu"] = float(
            json.loads(result.read_text())["results"][0]["metrics"]["mIoU"]
        )
    diff = abs(miou["gpu"] - miou["cpu"])
    return {
        "collective": collective,
        "steps": steps,
        "batch": batch,
        "workers": workers,
        "train_seconds": train_s,
        "miou_cpu": miou["cpu"],
        "miou_gpu": miou["gpu"],
        "miou_abs_diff": diff,
        "within_tolerance": diff <= MIOU_TOLERANCE,
        "eval_device": "cpu (dry run)" if dry_run else "cuda",
    }


def data_world(root: Path, n: int, size: tuple[int, int]) -> tuple[list[str], str]:
    """Webdataset shards of photo-like JPEGs (CC12M-like sizes on the GPU run) and a tags.db."""
    import io
    import tarfile

    import numpy as np
    from PIL import Image
    from train_helpers import make_tags_db

    rng = np.random.default_rng(0)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1)
    root.mkdir(parents=True, exist_ok=True)
    shard, samples = root / "00000.tar", {}
    with tarfile.open(shard, "w") as tar:
        for i in range(n):
            noisy = np.roll(base, int(rng.integers(w)), axis=1) + rng.normal(0, 12, base.shape)
            buf = io.BytesIO()
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
            for name, payload in ((f"{i:06d}.jpg", buf.getvalue()), (f"{i:06d}.txt", b"a cat")):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            samples[f"{i:06d}"] = ("a cat", ["cat"], ["black"])
    return [str(shard)], make_tags_db(root / "tags.db", samples)


def step_data_path(out: Path, dry_run: bool) -> dict:
    """The trainer's own dataset, collate and loader; `gpu` is `--decode-on gpu`'s path."""
    import torch
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
    from tagalign_train.preprocess import NORMALIZATIONS
    from tagparse.reader import load_labels
    from torch.utils.data import DataLoader

    device = device_for(dry_run)
    n, size, batch = (32, (96, 72), 8) if dry_run else (1024, (500, 375), 256)
    crop = 32 if dry_run else 224
    worker_counts = (0, 1) if dry_run else (4, 8, max(1, len(os.sched_getaffinity(0)) - 1))
    shards, db = data_world(out / "data", n, size)
    labels = load_labels(db)
    index = index_data(shards)
    use, rows, _ = join_labels(index, labels, "skip")
    mean, std = NORMALIZATIONS["imagenet"]
    transform = train_transform(crop, mean, std)
    collate = BatchCollate(labels, ["object", "attribute"])
    passes = n // batch
    rates: dict[str, dict[str, float]] = {"cpu": {}, "gpu": {}}
    for workers in worker_counts:
        for path in ("cpu", "gpu"):
            dataset = (
                TagAlignDataset(index, use, rows, transform)
                if path == "cpu"
                else EncodedTagAlignDataset(index, use, rows, GeometryDraw(transform))
            )
            loader = DataLoader(
                dataset,
                batch_sampler=StepBatches(len(use), batch, 1, 0, 0, 0, 2 * passes),
                num_workers=workers,
                collate_fn=collate,
                pin_memory=device.type == "cuda",
                prefetch_factor=4 if workers else None,
            )
            if path == "gpu":
                loader = DeviceDecodedBatches(
                    loader, DeviceDecoder((crop, crop), mean, std, device)
                )
            t0, seen = None, 0
            for i, b in enumerate(loader):
                images = b["images"].to(device, non_blocking=True)
                if i == passes // 2:  # the first half warms up the workers and the decoder
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    t0, seen = time.perf_counter(), 0
                seen += len(images)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates[path][str(workers)] = (seen - batch) / (time.perf_counter() - t0)
    train = read_report(out)["steps"].get("train_throughput", {}).get("result") or {}
    ceiling = train.get("images_per_s")
    return {
        "images": n,
        "image_size": list(size),
        "crop": crop,
        "batch": batch,
        "images_per_s": rates,
        "ceiling_images_per_s": ceiling,
        "ratio_to_ceiling": {
            p: {w: (r / ceiling if ceiling else None) for w, r in by_w.items()}
            for p, by_w in rates.items()
        },
        "note": "gpu = --decode-on gpu (decode, crop, flip on the device; no RandAugment)",
    }


def step_estimates(out: Path, dry_run: bool) -> dict:
    """RESULTS.md's CC12M figures recomputed: training from the measured step and data path,
    evaluation from the measured sliding-window rate, and parsing (Vicuna-33B, no LLM runs
    here) from this card's measured matmul and copy rates in place of the spec sheet's."""
    steps = read_report(out)["steps"]

    def result(name: str) -> dict:
        return steps.get(name, {}).get("result") or {}

    train, data, ev, env = (
        result(n) for n in ("train_throughput", "data_path", "eval_throughput", "env")
    )
    est: dict = {"source": "bench/RESULTS.md (issue 5 GPU throughput; issue 2 CC12M estimate)"}
    if train.get("images_per_s"):
        gpu_bound = train["images_per_s"]
        est["train_hours_1gpu_gpu_bound"] = PAPER_IMAGES / gpu_bound / 3600
        est["train_hours_8gpu_ideal"] = PAPER_IMAGES / gpu_bound / 3600 / 8
        for path, by_workers in (data.get("images_per_s") or {}).items():
            best = max(by_workers.values())
            est[f"train_hours_1gpu_data_bound_{path}_decode"] = (
                PAPER_IMAGES / min(gpu_bound, best) / 3600
            )
    fp32, bf16 = ev.get("fp32") or {}, ev.get("bf16") or {}
    for name, run in (("fp32", fp32), ("bf16", bf16)):
        if run.get("all_ten_minutes") is not None:
            est[f"eval_all_ten_minutes_{name}"] = run["all_ten_minutes"]
    tflops, tbs = env.get("matmul_tflops_measured"), env.get("copy_tb_per_s_measured")
    if tflops and tbs:
        # RESULTS.md: compute 26.3 GPU-ms/caption at 989 TFLOP/s x 40% MFU (9 ms with only the
        # caption uncached), decode memory 10.8 GPU-ms/caption at 3.35 TB/s x 70%
        compute, cached, memory = 26.3 * 989 / tflops, 9.0 * 989 / tflops, 10.8 * 3.35 / tbs
        est["parse_gpu_ms_per_caption"] = {"compute": compute, "memory": memory}
        est["parse_hours_cc12m"] = max(compute, memory) * CC12M_CAPTIONS / 3.6e6
        est["parse_hours_cc12m_prefix_cached"] = max(cached, memory) * CC12M_CAPTIONS / 3.6e6
        est["parse_note"] = "RESULTS.md's model with measured rates; no LLM ran (91 h / 37 h there)"
    return est


STEP_FUNCTIONS = {
    "env": step_env,
    "train_throughput": step_train_throughput,
    "eval_throughput": step_eval_throughput,
    "toy_torchrun": step_toy_torchrun,
    "data_path": step_data_path,
    "estimates": step_estimates,
    "collective": step_collective,
}


# --- the driver ---------------------------------------------------------------------------------


def dry_flag(dry_run: bool) -> list[str]:
    return ["--dry-run"] if dry_run else []


def run_one_step(name: str, out: Path, dry_run: bool) -> None:
    """Child side: run step `name`, write its result to DIR/steps/NAME.json."""
    result = STEP_FUNCTIONS[name](out, dry_run)
    (out / "steps").mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("RANK", "0")) == 0:
        write_json_atomic(out / "steps" / f"{name}.json", result)


def drive(out: Path, dry_run: bool) -> dict:
    """Parent side: every step in its own process within its budget; the JSON grows per step."""
    out.mkdir(parents=True, exist_ok=True)
    report = {"dry_run": dry_run, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    report["steps"] = {}
    write_json_atomic(out / "gpu_check.json", report)
    for name, gpu_budget, dry_budget in STEPS:
        budget = dry_budget if dry_run else gpu_budget
        log = out / f"{name}.log"
        t0 = time.perf_counter()
        args = [sys.executable, __file__, "--step", name, "--out", str(out), *dry_flag(dry_run)]
        with open(log, "w") as f:
            try:
                rc = subprocess.run(
                    args, stdout=f, stderr=subprocess.STDOUT, timeout=budget, check=False
                ).returncode
                status = "ok" if rc == 0 else "failed"
            except subprocess.TimeoutExpired:
                status = "timeout"
        entry = {"status": status, "seconds": round(time.perf_counter() - t0, 1), "budget": budget}
        result_file = out / "steps" / f"{name}.json"
        if status == "ok" and result_file.is_file():
            entry["result"] = json.loads(result_file.read_text())
        else:
            entry["status"] = "failed" if status == "ok" else status
            entry["log_tail"] = log.read_text()[-2000:]
        report["steps"][name] = entry
        write_json_atomic(out / "gpu_check.json", report)
        print(f"{name:18s} {entry['status']:8s} {entry['seconds']:6.1f} s", flush=True)
    return report


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="every step on the CPU, tiny sizes")
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu_check_out"))
    ap.add_argument("--step", choices=sorted(STEP_FUNCTIONS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    out = Path(args.out).resolve()
    if args.step:
        run_one_step(args.step, out, args.dry_run)  # a failure's traceback goes to the log
        return
    report = drive(out, args.dry_run)
    failed = [n for n, s in report["steps"].items() if s["status"] != "ok"]
    print(f"{out / 'gpu_check.json'}: {len(report['steps']) - len(failed)} steps ok", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
