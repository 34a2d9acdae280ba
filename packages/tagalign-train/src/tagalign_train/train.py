"""The training loop: one process or `torchrun` DDP, exact resume, atomic checkpoints.

`train(TrainConfig)` is the Python API; `tagalign-train` (cli.py) is a thin layer over it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tagparse.errors import TagparseError
from tagparse.reader import TagLabels, load_labels
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from tagalign_train import checkpoint as ckpt
from tagalign_train.data import (
    BatchCollate,
    StepBatches,
    TagAlignDataset,
    index_data,
    join_labels,
    train_transform,
)
from tagalign_train.errors import TrainError
from tagalign_train.features import build_feature_cache
from tagalign_train.losses import TagAlignLoss, TagLoss
from tagalign_train.model import TagAlignModel, build_model, model_from_config
from tagalign_train.text import TEMPLATE_SETS, cached_tag_embeddings

log = logging.getLogger(__name__)

#: The paper's recipe (512 per GPU on 8 GPUs = 4096, lr 1e-3 at 4096) and a CPU toy.
PRESETS: dict[str, dict] = {
    "paper": {
        "model": "ViT-B-16",
        "pretrained": "openai",
        "batch_size": 512,
        "steps": 30001,
        "lr": 1e-3,
        "image_size": 224,
        "save_every": 1000,
        "log_every": 50,
    },
    "toy": {
        "model": "tagalign-tiny-ViT",
        "pretrained": "none",
        "batch_size": 32,
        "steps": 200,
        "lr": 0.1,
        "image_size": 64,
        "save_every": 50,
        "log_every": 10,
    },
}
KIND_FLAGS = {"objects": ["object"], "attributes": ["attribute"], "both": ["object", "attribute"]}
REFERENCE_BATCH = 4096


@dataclass
class TrainConfig:
    """Every setting of a run; `None` fields take the preset's value."""

    labels: str
    data: list[str]
    out: str
    preset: str = "paper"
    model: str | None = None
    pretrained: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    image_size: int | None = None
    save_every: int | None = None
    log_every: int | None = None
    dense: str = "surgery"
    projector: str = "conv"
    tag_weight: float = 1.0
    itc_weight: float = 1.0
    tag_kinds: str = "both"
    tag_loss: str = "softmax"
    tag_softmax: str = "joint"
    templates: str = "single"
    workers: int = 2
    seed: int = 0
    resume: bool = False
    accum: int = 1
    keep_last: int = 3
    cache_features: str | None = None
    unlabeled: str = "skip"
    csv_root: str | None = None
    text_cache: str | None = None
    weight_decay: float = 0.05
    grad_clip: float = 5.0
    progress: bool = True

    def resolved(self) -> TrainConfig:
        if self.preset not in PRESETS:
            raise TrainError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        values = asdict(self)
        for k, v in PRESETS[self.preset].items():
            if values[k] is None:
                values[k] = v
        if self.tag_kinds not in KIND_FLAGS:
            raise TrainError(
                f"--tag-kinds must be one of {', '.join(KIND_FLAGS)}, got {self.tag_kinds!r}"
            )
        if self.tag_softmax not in ("joint", "per-kind"):
            raise TrainError("--tag-softmax must be joint or per-kind")
        if self.templates not in TEMPLATE_SETS:
            raise TrainError(f"--templates must be one of {', '.join(TEMPLATE_SETS)}")
        for name in ("steps", "batch_size", "accum"):
            if values[name] is not None and values[name] < 1:
                raise TrainError(f"--{name.replace('_', '-')} must be >= 1")
        return TrainConfig(**values)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; NCCL on GPU, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = (
        torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    return Dist(rank, world, local_rank, device)


def read_labels(path: str) -> TagLabels:
    if not Path(path).is_file():
        raise TrainError(
            f"{path}: tags.db not found; create it with `tagparse run` and `tagparse vocab`"
        )
    try:
        labels = load_labels(path)
    except TagparseError as exc:
        raise TrainError(str(exc)) from exc
    if not any(labels.vocab.values()):
        raise TrainError(f"{path}: the vocabulary is empty; run `tagparse vocab --db {path}`")
    return labels


def vocab_config(labels: TagLabels, kinds: list[str]) -> dict:
    return {
        "vocab_fingerprint": labels.fingerprint,
        "tag_kinds": kinds,
        "vocab": {k: labels.vocab[k] for k in kinds},
    }


def check_resume_compatible(saved: dict, wanted: dict, ckpt_dir: Path) -> None:
    """Refuse to continue a checkpoint from another vocabulary or backbone (both fingerprints)."""
    if saved.get("vocab_fingerprint") != wanted["vocab_fingerprint"]:
        raise TrainError(
            f"{ckpt_dir}: checkpoint vocabulary {saved.get('vocab_fingerprint')} differs from "
            f"the --labels vocabulary {wanted['vocab_fingerprint']}; use a new --out"
        )
    for key in ("model", "pretrained", "dense", "projector", "tag_kinds"):
        if saved.get(key) != wanted.get(key):
            raise TrainError(
                f"{ckpt_dir}: checkpoint {key} {saved.get(key)!r} differs from the requested "
                f"{wanted.get(key)!r}; use a new --out"
            )


def param_groups(modules: list[nn.Module], weight_decay: float) -> list[dict]:
    """No weight decay on 1-D (and 0-D) parameters: norms, biases, gates, temperatures."""
    decay, no_decay = [], []
    for module in modules:
        for p in module.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class TrainStep(nn.Module):
    """Model + loss as one module so DDP synchronises the projector and both temperatures."""

    def __init__(self, model: TagAlignModel, loss: TagAlignLoss, tag_emb: torch.Tensor):
        super().__init__()
        self.model = model
        self.loss = loss
        self.register_buffer("tag_emb", tag_emb, persistent=False)

    def forward(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        text_emb: torch.Tensor | None,
        cached: bool,
    ) -> dict[str, torch.Tensor]:
        feats = inputs if cached else self.model.backbone_features(inputs)
        image_emb = self.model.project_features(feats).float().mean(dim=(2, 3))
        return self.loss(image_emb, self.tag_emb, targets, text_emb)


def _rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class MetricsLog:
    """JSONL metrics (always) + TensorBoard (when installed), main rank only."""

    def __init__(self, out: Path, enabled: bool):
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        self.path = out / "metrics.jsonl"
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"))
        except ImportError:
            self.tb = None

    def write(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


@dataclass
class RunResult:
    out: Path
    step: int
    checkpoint: Path | None
    history: list[dict]
    join: dict


def _precision(device: torch.device):
    """bf16 autocast on GPUs that have it, fp16 + GradScaler otherwise, fp32 on the CPU."""
    if device.type != "cuda":
        return nullcontext, None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def train(cfg: TrainConfig) -> RunResult:
    """Run (or resume) training; returns the final step, checkpoint and the logged metrics.

    The process-wide settings a run needs (deterministic algorithms, intra-op threads) are
    restored afterwards, so notebooks and test sessions are left as they were.
    """
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        return _train(cfg.resolved())
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def _train(cfg: TrainConfig) -> RunResult:
    env = setup_distributed()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    if env.device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        _limit_cpu_threads(cfg.workers, env.world)
    out = Path(cfg.out)
    if not cfg.resume and ckpt.step_dirs(out):
        raise TrainError(
            f"{out} already holds checkpoints; pass --resume to continue it or choose a new --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    kinds = KIND_FLAGS[cfg.tag_kinds]
    labels = read_labels(cfg.labels)
    wanted_vocab = vocab_config(labels, kinds)
    if not sum(len(v) for v in wanted_vocab["vocab"].values()):
        raise TrainError(
            f"{cfg.labels}: no {cfg.tag_kinds} tags in the vocabulary; run `tagparse vocab` "
            "with a non-zero count for them"
        )

    resume_dir = _resume_dir(out) if cfg.resume else None
    if resume_dir is not None:
        saved = ckpt.read_config(resume_dir)
        check_resume_compatible(
            saved,
            {
                **wanted_vocab,
                "model": cfg.model,
                "pretrained": _recorded(cfg.pretrained),
                "dense": cfg.dense,
                "projector": cfg.projector,
            },
            resume_dir,
        )
        model = model_from_config(saved, device=env.device)
    else:
        model = build_model(
            cfg.model,
            cfg.pretrained,
            cfg.dense,
            cfg.projector,
            image_size=cfg.image_size,
            device=env.device,
        )

    index = index_data(cfg.data, cfg.csv_root)
    use, label_rows, join = join_labels(index, labels, cfg.unlabeled)
    if env.main:
        log.info(
            "data: %d samples, %d labelled, %d unlabelled (%s)",
            join.data_samples,
            join.labelled,
            join.unlabelled,
            "kept with empty labels" if join.kept_unlabelled else "skipped",
        )
    pre = model.config["preprocessing"]
    collate = BatchCollate(
        labels,
        kinds,
        pre["mean"],
        pre["std"],
        erase_p=0.25,
        tokenizer=model.tokenizer if cfg.itc_weight > 0 else None,
    )
    tag_emb = cached_tag_embeddings(
        model,
        _tag_list(labels, kinds),
        labels.fingerprint,
        TEMPLATE_SETS[cfg.templates],
        _text_cache(cfg),
    )

    loss = make_loss(cfg, labels, kinds, collate.offsets)
    step_module = TrainStep(model, loss, tag_emb).to(env.device)

    global_batch = cfg.batch_size * env.world * cfg.accum
    lr = cfg.lr * global_batch / REFERENCE_BATCH
    optimizer = torch.optim.AdamW(param_groups([model, loss], cfg.weight_decay), lr=lr, eps=1e-6)
    autocast, scaler = _precision(env.device)

    step, history = 0, []
    if resume_dir is not None:
        step, history = _restore(resume_dir, model, loss, optimizer, scaler, env.device)
        if env.main:
            log.info("resuming %s at step %d", resume_dir, step)

    if cfg.cache_features:
        cache = build_feature_cache(
            model,
            index,
            use,
            label_rows,
            Path(cfg.cache_features),
            image_size=pre["image_size"],
            mean=pre["mean"],
            std=pre["std"],
            batch_size=cfg.batch_size,
            workers=cfg.workers,
            device=env.device,
            rank=env.rank,
            world=env.world,
            progress=cfg.progress and env.main,
        )
        dataset = cache.dataset()
    else:
        dataset = TagAlignDataset(index, use, label_rows, train_transform(pre["image_size"]))
    sampler = StepBatches(
        len(dataset),
        cfg.batch_size,
        env.world,
        env.rank,
        cfg.seed,
        start=step * cfg.accum,
        stop=cfg.steps * cfg.accum,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.workers,
        collate_fn=collate,
        pin_memory=env.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if cfg.workers > 0 else None,
    )

    ddp = step_module
    if env.world > 1:
        ddp = DistributedDataParallel(
            step_module, device_ids=[env.local_rank] if env.device.type == "cuda" else None
        )
    run_config = {
        **model.config,
        **wanted_vocab,
        "train": {k: v for k, v in asdict(cfg).items() if k != "progress"},
        "world_size": env.world,
        "global_batch": global_batch,
        "effective_lr": lr,
    }
    metrics = MetricsLog(out, env.main)
    trainable = [p for p in step_module.parameters() if p.requires_grad]
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        disable=not (cfg.progress and env.main),
        unit="step",
        dynamic_ncols=True,
        desc="train",
    )
    last_ckpt: Path | None = resume_dir
    window = {"images": 0, "t0": time.perf_counter(), "skipped": 0}
    sums: dict[str, float] = {}
    micro = 0
    model.train()
    try:
        for batch in loader:
            targets = batch["targets"].to(env.device, non_blocking=True)
            inputs = batch["images"].to(env.device, non_blocking=True)
            sync = (micro + 1) % cfg.accum == 0
            no_sync = ddp.no_sync if (env.world > 1 and not sync) else nullcontext
            with no_sync():
                with autocast():
                    text_emb = None
                    if cfg.itc_weight > 0:
                        text_emb = batch.get("text_emb")  # cached features carry caption embeddings
                        text_emb = (
                            text_emb.to(env.device)
                            if text_emb is not None
                            else model.encode_tokens(batch["tokens"])
                        )
                    terms = ddp(inputs, targets, text_emb, cfg.cache_features is not None)
                _check_finite(terms, step + 1, last_ckpt, env)
                scaled = terms["loss"] / cfg.accum
                (scaler.scale(scaled) if scaler else scaled).backward()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / cfg.accum
            window["images"] += len(inputs) * env.world
            window["skipped"] += batch["skipped"]
            micro += 1
            if not sync:
                continue
            if scaler is not None:
                scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            record = dict(sums)
            sums = {}
            if env.main:
                elapsed = time.perf_counter() - window["t0"]
                ips = window["images"] / max(elapsed, 1e-9)
                bar.set_postfix(
                    {k: f"{v:.3f}" for k, v in record.items()} | {"img/s": f"{ips:.0f}"},
                    refresh=False,
                )
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    entry = {
                        **record,
                        "grad_norm": float(grad_norm),
                        "images_per_s": ips,
                        "tag_scale": float(loss.tag.scale().detach()),
                        "itc_scale": float(loss.itc.scale().detach()),
                        "skipped_images": window["skipped"],
                        "lr": lr,
                    }
                    history.append({"step": step, **entry})
                    metrics.write(step, entry)
                    window = {"images": 0, "t0": time.perf_counter(), "skipped": 0}
            if step % cfg.save_every == 0 or step == cfg.steps:
                last_ckpt = _save(
                    out, step, model, loss, optimizer, scaler, run_config, history, cfg, env
                )
    except torch.OutOfMemoryError as exc:
        raise TrainError(
            f"out of GPU memory at --batch-size {cfg.batch_size}; try --batch-size "
            f"{max(1, cfg.batch_size // 2)} with --accum {cfg.accum * 2} (same global batch)"
        ) from exc
    finally:
        bar.close()
        metrics.close()
    return RunResult(out, step, last_ckpt, history, asdict(join))


def make_loss(
    cfg: TrainConfig, labels: TagLabels, kinds: list[str], offsets: np.ndarray
) -> TagAlignLoss:
    """The configured losses; a term with weight 0 also freezes its temperature."""
    groups = None
    if cfg.tag_softmax == "per-kind":
        groups = [slice(int(a), int(b)) for a, b in itertools.pairwise(offsets) if b > a]
    log_prior = None
    if cfg.tag_loss == "balanced":
        counts = np.concatenate([labels.counts[k] for k in kinds]).astype(np.float64) + 1.0
        log_prior = torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)
    loss = TagAlignLoss(TagLoss(cfg.tag_loss, groups, log_prior), cfg.tag_weight, cfg.itc_weight)
    loss.tag.scale.requires_grad_(cfg.tag_weight > 0)
    loss.itc.scale.requires_grad_(cfg.itc_weight > 0)
    return loss


def _restore(
    ckpt_dir: Path,
    model: TagAlignModel,
    loss: TagAlignLoss,
    optimizer,
    scaler,
    device: torch.device,
) -> tuple[int, list[dict]]:
    """Weights, optimizer, scaler and RNG of a checkpoint; returns (step, metric history)."""
    weights = ckpt.read_weights(ckpt_dir, device)
    model.load_trainable_state_dict({k: v for k, v in weights.items() if not k.startswith("loss.")})
    loss.load_state_dict({k[5:]: v for k, v in weights.items() if k.startswith("loss.")})
    state = torch.load(ckpt_dir / ckpt.TRAIN_STATE, map_location=device, weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    return int(state["step"]), state.get("history", [])


def _limit_cpu_threads(workers: int, world: int) -> None:
    """Leave cores to the data workers and the other ranks: oversubscribed intra-op threads spin
    and made a tiny model ~50x slower on a busy 2-core machine. OMP_NUM_THREADS wins if set."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    torch.set_num_threads(max(1, cores // world - workers))


def _check_finite(terms: dict, step: int, last_ckpt: Path | None, env: Dist) -> None:
    finite = torch.tensor(
        float(all(torch.isfinite(v).all() for v in terms.values())), device=env.device
    )
    if env.world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if finite.item() < 1:
        values = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in terms.items())
        kept = (
            f"last good checkpoint kept: {last_ckpt}"
            if last_ckpt
            else "no checkpoint was written yet"
        )
        raise TrainError(
            f"non-finite loss at step {step} ({values}); {kept}; lower --lr or check the data"
        )


def _save(
    out: Path,
    step: int,
    model: TagAlignModel,
    loss: TagAlignLoss,
    optimizer,
    scaler,
    run_config: dict,
    history: list,
    cfg: TrainConfig,
    env: Dist,
) -> Path:
    path = out / "checkpoints" / f"step-{step:07d}"
    if env.main:
        weights = {
            **model.trainable_state_dict(),
            **{f"loss.{k}": v for k, v in loss.state_dict().items()},
        }
        state = {
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler else None,
            "rng": _rng_state(),
            "step": step,
            "micro_step": step * cfg.accum,
            "history": history,
        }
        path = ckpt.write_checkpoint(
            out, step, weights, {**run_config, "step": step}, state, cfg.keep_last
        )
    if env.world > 1:
        dist.barrier()
    return path


def _resume_dir(out: Path) -> Path | None:
    steps = ckpt.step_dirs(out)
    if not steps:
        log.info("--resume: no checkpoint in %s yet, starting from step 0", out)
        return None
    return ckpt.resolve_checkpoint_dir(out)


def _recorded(pretrained: str | None) -> str:
    if pretrained and os.path.isfile(pretrained):
        return str(Path(pretrained).resolve())
    return pretrained or "none"


def _tag_list(labels: TagLabels, kinds: list[str]) -> list[str]:
    return [t for k in kinds for t in labels.vocab[k]]


def _text_cache(cfg: TrainConfig) -> Path:
    if cfg.text_cache:
        return Path(cfg.text_cache)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tagalign-train" / "text"
