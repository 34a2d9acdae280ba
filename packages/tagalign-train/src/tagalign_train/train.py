"""The training run: `setup` builds everything once, `train_loop` steps through it.

`train(TrainConfig)` is the Python API; `tagalign-train` (cli.py) is a thin layer over it. One
process or `torchrun` DDP; a checkpoint every `save_every` steps resumes bit-exactly.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tagparse.errors import TagparseError
from tagparse.reader import TagLabels, load_labels
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from tagalign_train import checkpoint as ckpt
from tagalign_train import distributed
from tagalign_train.checkpoint import TrainState
from tagalign_train.config import TEMPLATE_SETS, TrainConfig
from tagalign_train.data import (
    BatchCollate,
    StepBatches,
    TagAlignDataset,
    index_data,
    join_labels,
    train_transform,
)
from tagalign_train.distributed import Dist
from tagalign_train.errors import TrainError
from tagalign_train.features import FeatureCacheSpec, build_feature_cache
from tagalign_train.losses import TagAlignLoss, TagLoss
from tagalign_train.metrics import MetricsLog
from tagalign_train.model import TagAlignModel, build_model, model_from_config
from tagalign_train.model_config import CheckpointConfig, VocabInfo
from tagalign_train.optim import make_optimizer, scaled_lr
from tagalign_train.precision import Precision, precision_for
from tagalign_train.text import cached_tag_embeddings

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    out: Path
    step: int
    checkpoint: Path | None
    history: list[dict]
    join: dict


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


@dataclass
class Run:
    """Everything `setup` builds and `train_loop` uses; `state` is what checkpoints hold."""

    cfg: TrainConfig
    env: Dist
    out: Path
    state: TrainState
    forward: nn.Module  # the TrainStep, DDP-wrapped when world > 1
    loader: DataLoader
    precision: Precision
    config: CheckpointConfig
    join: dict
    resumed_from: Path | None


def train(cfg: TrainConfig) -> RunResult:
    """Run (or resume) training; returns the final step, checkpoint and the logged metrics.

    The process-wide settings a run needs (deterministic algorithms, intra-op threads) are
    restored afterwards, so notebooks and test sessions are left as they were.
    """
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        return train_loop(setup(cfg.resolved()))
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def train_loop(run: Run) -> RunResult:
    """Micro-batches until `cfg.steps` optimizer steps: accumulate, step, log, checkpoint."""
    cfg, env, state = run.cfg, run.env, run.state
    last_ckpt = run.resumed_from
    throughput = Throughput(env.world)
    bar = tqdm(
        total=cfg.steps,
        initial=state.step,
        disable=not (cfg.progress and env.main),
        unit="step",
        dynamic_ncols=True,
        desc="train",
    )
    sums: dict[str, float] = {}
    state.model.train()
    try:
        with MetricsLog(run.out, env.main) as metrics:
            for micro, batch in enumerate(run.loader):
                sync = (micro + 1) % cfg.accum == 0
                terms = forward_backward(run, batch, sync, last_ckpt)
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) / cfg.accum
                throughput.add(batch)
                if not sync:
                    continue
                grad_norm = optimizer_step(run)
                state.step += 1
                record, sums = sums, {}
                if env.main:
                    throughput.show(bar, record)
                    if state.step % cfg.log_every == 0 or state.step == cfg.steps:
                        entry = log_entry(run, record, grad_norm, throughput)
                        state.history.append({"step": state.step, **entry})
                        metrics.write(state.step, entry)
                        throughput.reset()
                if state.step % cfg.save_every == 0 or state.step == cfg.steps:
                    last_ckpt = state.save(
                        run.out, run.config, accum=cfg.accum, keep_last=cfg.keep_last, main=env.main
                    )
    except torch.OutOfMemoryError as exc:
        raise TrainError(
            f"out of GPU memory at --batch-size {cfg.batch_size}; try --batch-size "
            f"{max(1, cfg.batch_size // 2)} with --accum {cfg.accum * 2} (same global batch)"
        ) from exc
    finally:
        bar.close()
    return RunResult(run.out, state.step, last_ckpt, state.history, run.join)


def forward_backward(run: Run, batch: dict, sync: bool, last_ckpt: Path | None) -> dict:
    """One micro-batch: loss terms, checked finite on every rank, and their gradients (DDP
    synchronises them only on the micro-batch that ends an optimizer step)."""
    cfg, env = run.cfg, run.env
    targets = batch["targets"].to(env.device, non_blocking=True)
    inputs = batch["images"].to(env.device, non_blocking=True)
    no_sync = run.forward.no_sync if (env.world > 1 and not sync) else nullcontext
    with no_sync():
        with run.precision.autocast():
            text_emb = None
            if cfg.itc_weight > 0:
                text_emb = batch.get("text_emb")  # cached features carry caption embeddings
                text_emb = (
                    text_emb.to(env.device)
                    if text_emb is not None
                    else run.state.model.encode_tokens(batch["tokens"])
                )
            terms = run.forward(inputs, targets, text_emb, cfg.cache_features is not None)
        check_finite(terms, run.state.step + 1, last_ckpt, env)
        run.precision.backward(terms["loss"] / cfg.accum)
    return terms


def optimizer_step(run: Run) -> torch.Tensor:
    """Clip the accumulated gradients, step, clear them; returns the pre-clip gradient norm."""
    optimizer = run.state.optimizer
    run.precision.unscale_(optimizer)
    trainable = [p for p in run.forward.parameters() if p.requires_grad]
    grad_norm = torch.nn.utils.clip_grad_norm_(trainable, run.cfg.grad_clip)
    run.precision.step(optimizer)
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


def log_entry(run: Run, record: dict, grad_norm: torch.Tensor, throughput: Throughput) -> dict:
    loss = run.state.loss
    return {
        **record,
        "grad_norm": float(grad_norm),
        "images_per_s": throughput.images_per_s(),
        "tag_scale": float(loss.tag.scale().detach()),
        "itc_scale": float(loss.itc.scale().detach()),
        "skipped_images": throughput.skipped,
        "lr": run.config.effective_lr,
    }


class Throughput:
    """Images per second (all ranks) and unreadable images skipped since the last log line."""

    def __init__(self, world: int):
        self.world = world
        self.reset()

    def reset(self) -> None:
        self.images, self.skipped, self.t0 = 0, 0, time.perf_counter()

    def add(self, batch: dict) -> None:
        self.images += len(batch["images"]) * self.world
        self.skipped += batch["skipped"]

    def images_per_s(self) -> float:
        return self.images / max(time.perf_counter() - self.t0, 1e-9)

    def show(self, bar: tqdm, record: dict) -> None:
        postfix = {k: f"{v:.3f}" for k, v in record.items()}
        bar.set_postfix(postfix | {"img/s": f"{self.images_per_s():.0f}"}, refresh=False)
        bar.update(1)


# -- setup ------------------------------------------------------------------------------------


def setup(cfg: TrainConfig) -> Run:
    """Process group, seeds, labels, model (fresh or resumed), losses, optimizer and data."""
    env = distributed.setup_distributed()
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
    labels = read_labels(cfg.labels)
    vocab = vocab_info(labels, cfg.kinds)
    if not vocab.tag_list:
        raise TrainError(
            f"{cfg.labels}: no {cfg.tag_kinds} tags in the vocabulary; run `tagparse vocab` "
            "with a non-zero count for them"
        )
    resume_dir = _resume_dir(out) if cfg.resume else None
    model = _resumed_model(cfg, vocab, resume_dir, env) if resume_dir else _fresh_model(cfg, env)

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
    pre = model.config.preprocessing
    tokenizer = model.tokenizer if cfg.itc_weight > 0 else None
    collate = BatchCollate(labels, cfg.kinds, pre.mean, pre.std, erase_p=0.25, tokenizer=tokenizer)
    templates = TEMPLATE_SETS[cfg.templates]
    tag_emb = cached_tag_embeddings(
        model, vocab.tag_list, labels.fingerprint, templates, _text_cache(cfg)
    )
    loss = make_loss(cfg, labels, collate.offsets)
    step_module = TrainStep(model, loss, tag_emb).to(env.device)

    global_batch = cfg.batch_size * env.world * cfg.accum
    lr = scaled_lr(cfg.lr, global_batch)
    precision = precision_for(env.device)
    optimizer = make_optimizer([model, loss], lr, cfg.weight_decay)
    state = TrainState(model, loss, optimizer, precision.scaler)
    if resume_dir is not None:
        state.restore(resume_dir, env.device)
        if env.main:
            log.info("resuming %s at step %d", resume_dir, state.step)

    if cfg.cache_features:
        spec = FeatureCacheSpec(
            Path(cfg.cache_features), index, use, label_rows, cfg.batch_size, cfg.workers
        )
        cache = build_feature_cache(model, spec, env, progress=cfg.progress and env.main)
        dataset = cache.dataset()
    else:
        dataset = TagAlignDataset(index, use, label_rows, train_transform(pre.image_size))
    sampler = StepBatches(
        len(dataset),
        cfg.batch_size,
        env.world,
        env.rank,
        cfg.seed,
        start=state.step * cfg.accum,
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
    forward: nn.Module = step_module
    if env.world > 1:
        device_ids = [env.local_rank] if env.device.type == "cuda" else None
        forward = DistributedDataParallel(step_module, device_ids=device_ids)
    run_config = CheckpointConfig(
        model=model.config,
        vocab=vocab,
        train=cfg.recorded(),
        world_size=env.world,
        global_batch=global_batch,
        effective_lr=lr,
    )
    return Run(
        cfg, env, out, state, forward, loader, precision, run_config, asdict(join), resume_dir
    )


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


def vocab_info(labels: TagLabels, kinds: list[str]) -> VocabInfo:
    return VocabInfo(labels.fingerprint, tuple(kinds), {k: labels.vocab[k] for k in kinds})


def _fresh_model(cfg: TrainConfig, env: Dist) -> TagAlignModel:
    return build_model(
        cfg.model,
        cfg.pretrained,
        cfg.dense,
        cfg.projector,
        image_size=cfg.image_size,
        device=env.device,
    )


def _resumed_model(cfg: TrainConfig, vocab: VocabInfo, ckpt_dir: Path, env: Dist) -> TagAlignModel:
    """The checkpoint's architecture, after refusing one from another vocabulary or backbone."""
    saved = ckpt.read_config(ckpt_dir)
    saved_fp = saved.vocab.fingerprint if saved.vocab else None
    if saved_fp != vocab.fingerprint:
        raise TrainError(
            f"{ckpt_dir}: checkpoint vocabulary {saved_fp} differs from "
            f"the --labels vocabulary {vocab.fingerprint}; use a new --out"
        )
    compared = [
        ("model", saved.model.name, cfg.model),
        ("pretrained", saved.model.pretrained, _recorded(cfg.pretrained)),
        ("dense", saved.model.dense, cfg.dense),
        ("projector", saved.model.projector, cfg.projector),
        ("tag_kinds", list(saved.vocab.kinds), list(vocab.kinds)),
    ]
    for key, was, wanted in compared:
        if was != wanted:
            raise TrainError(
                f"{ckpt_dir}: checkpoint {key} {was!r} differs from the requested "
                f"{wanted!r}; use a new --out"
            )
    return model_from_config(saved.model, device=env.device)


def make_loss(cfg: TrainConfig, labels: TagLabels, offsets: np.ndarray) -> TagAlignLoss:
    """The configured losses; a term with weight 0 also freezes its temperature."""
    groups = None
    if cfg.tag_softmax == "per-kind":
        groups = [slice(int(a), int(b)) for a, b in itertools.pairwise(offsets) if b > a]
    log_prior = None
    if cfg.tag_loss == "balanced":
        counts = np.concatenate([labels.counts[k] for k in cfg.kinds]).astype(np.float64) + 1.0
        log_prior = torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)
    loss = TagAlignLoss(TagLoss(cfg.tag_loss, groups, log_prior), cfg.tag_weight, cfg.itc_weight)
    loss.tag.scale.requires_grad_(cfg.tag_weight > 0)
    loss.itc.scale.requires_grad_(cfg.itc_weight > 0)
    return loss


def check_finite(terms: dict, step: int, last_ckpt: Path | None, env: Dist) -> None:
    """Stop every rank at the first non-finite loss, pointing at the last good checkpoint."""
    finite = torch.tensor(
        float(all(torch.isfinite(v).all() for v in terms.values())), device=env.device
    )
    distributed.all_reduce_min(finite)
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


def _limit_cpu_threads(workers: int, world: int) -> None:
    """Leave cores to the data workers and the other ranks: oversubscribed intra-op threads spin
    and made a tiny model ~50x slower on a busy 2-core machine. OMP_NUM_THREADS wins if set."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    torch.set_num_threads(max(1, cores // world - workers))


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


def _text_cache(cfg: TrainConfig) -> Path:
    if cfg.text_cache:
        return Path(cfg.text_cache)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tagalign-train" / "text"
