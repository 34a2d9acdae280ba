"""Setting a run up: everything `train_loop` needs, built once from a resolved TrainConfig.

The order of the steps is part of the contract: the projector is initialised from the seeded RNG
before anything else draws from it, and a resumed run restores every RNG after the model, loss
and optimizer exist, so a resumed run continues bit-identically.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tagparse.errors import TagparseError
from tagparse.reader import TagLabels, load_labels
from tagparse.writable import not_a_folder, write_refusal
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from tagalign_train import checkpoint as ckpt
from tagalign_train import distributed
from tagalign_train.checkpoint import TrainState
from tagalign_train.config import RESUME_MUST_MATCH, TEMPLATE_SETS, TrainConfig
from tagalign_train.data import (
    BatchCollate,
    EncodedTagAlignDataset,
    JoinStats,
    SampleIndex,
    StepBatches,
    TagAlignDataset,
    index_data,
    join_labels,
    train_transform,
)
from tagalign_train.distributed import Dist
from tagalign_train.errors import TrainError
from tagalign_train.features import FeatureCacheSpec, build_feature_cache
from tagalign_train.gpu_decode import (
    DeviceDecodedBatches,
    DeviceDecoder,
    GeometryDraw,
    resolve_decode_on,
)
from tagalign_train.losses import TagAlignLoss, TagLoss
from tagalign_train.model import TagAlignModel, build_model, model_from_config
from tagalign_train.model_config import CheckpointConfig, VocabInfo
from tagalign_train.optim import make_optimizer, scaled_lr
from tagalign_train.precision import Precision, precision_for
from tagalign_train.text import cached_tag_embeddings

log = logging.getLogger(__name__)


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
    """Everything `setup_run` builds and `train_loop` uses; `state` is what checkpoints hold."""

    cfg: TrainConfig
    env: Dist
    out: Path
    state: TrainState
    forward: nn.Module  # the TrainStep, DDP-wrapped when world > 1
    loader: DataLoader | DeviceDecodedBatches
    precision: Precision
    config: CheckpointConfig  # what each checkpoint's config.json records (its step aside)
    join: dict
    resumed_from: Path | None


def setup_run(cfg: TrainConfig) -> Run:
    """Process group, seeds, labels, model (fresh or resumed), losses, optimizer and data."""
    env = _setup_process(cfg)
    out = _check_out_dir(cfg)
    labels = read_labels(cfg.labels)
    vocab = _vocab(cfg, labels)
    resume_dir = _resume_dir(out, env) if cfg.resume else None
    model = _resumed_model(cfg, vocab, resume_dir, env) if resume_dir else _fresh_model(cfg, env)
    index, use, label_rows, join = _samples(cfg, labels, env)
    _check_batch_fits(cfg, env, len(use))

    pre = model.config.preprocessing
    tokenizer = model.tokenizer if cfg.itc_weight > 0 else None
    collate = BatchCollate(labels, cfg.kinds, tokenizer=tokenizer)
    templates = TEMPLATE_SETS[cfg.templates]
    tag_emb = cached_tag_embeddings(
        model, vocab.tag_list, labels.fingerprint, templates, _text_cache(cfg)
    )
    loss = make_loss(cfg, labels, collate.offsets)
    step_module = TrainStep(model, loss, tag_emb).to(env.device)

    global_batch = cfg.batch_size * env.world * cfg.accum
    lr = scaled_lr(cfg.lr, global_batch)
    precision = precision_for(env.device)
    state = TrainState(
        model, loss, make_optimizer([model, loss], lr, cfg.weight_decay), precision.scaler
    )
    if resume_dir is not None:
        state.restore(resume_dir, env.device)
        if env.main:
            log.info("resuming %s at step %d", resume_dir, state.step)

    decode_on = resolve_decode_on(cfg.decode_on, env.device, bool(cfg.cache_features))
    if cfg.cache_features:
        spec = FeatureCacheSpec(
            Path(cfg.cache_features), index, use, label_rows, cfg.batch_size, cfg.workers
        )
        dataset = build_feature_cache(model, spec, env, cfg.progress and env.main).dataset()
    else:
        dataset = _image_dataset(index, use, label_rows, pre, decode_on)
    out.mkdir(parents=True, exist_ok=True)  # only now: a refused command leaves no folder
    config = CheckpointConfig(
        model=model.config,
        vocab=vocab,
        train=cfg,
        world_size=env.world,
        global_batch=global_batch,
        effective_lr=lr,
    )
    loader = _loader(cfg, env, dataset, collate, state.step)
    if isinstance(dataset, EncodedTagAlignDataset):
        decoder = DeviceDecoder((pre.image_size, pre.image_size), pre.mean, pre.std, env.device)
        loader = DeviceDecodedBatches(loader, decoder)
    return Run(
        cfg,
        env,
        out,
        state,
        _distributed(step_module, env),
        loader,
        precision,
        config,
        asdict(join),
        resume_dir,
    )


def _image_dataset(
    index: SampleIndex, use: np.ndarray, label_rows: np.ndarray, pre, decode_on: str
) -> TagAlignDataset:
    """Images decoded and augmented in the workers, or (`decode_on` gpu) read as bytes there
    with their crop drawn, and decoded on the GPU (gpu_decode.py)."""
    transform = train_transform(pre.image_size, pre.mean, pre.std)
    if decode_on == "gpu":
        return EncodedTagAlignDataset(index, use, label_rows, GeometryDraw(transform))
    return TagAlignDataset(index, use, label_rows, transform)


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


def make_loss(cfg: TrainConfig, labels: TagLabels, offsets: np.ndarray) -> TagAlignLoss:
    """The configured losses; a term with weight 0 also freezes its temperature."""
    groups = None
    if cfg.tag_softmax == "per-kind":
        groups = [slice(int(a), int(b)) for a, b in itertools.pairwise(offsets) if b > a]
    log_prior = None
    if cfg.tag_loss == "balanced":
        counts = np.concatenate([labels.counts[k] for k in cfg.kinds]).astype(np.float64) + 1.0
        log_prior = torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)
    kinds = {k: slice(int(a), int(b)) for k, (a, b) in zip(cfg.kinds, itertools.pairwise(offsets))}
    weights = {"attribute": cfg.attribute_weight}
    tag_loss = TagLoss(cfg.tag_loss, groups, log_prior, kinds=kinds, kind_weights=weights)
    loss = TagAlignLoss(tag_loss, cfg.tag_weight, cfg.itc_weight)
    loss.tag.scale.requires_grad_(cfg.tag_weight > 0)
    loss.itc.scale.requires_grad_(cfg.itc_weight > 0)
    return loss


def _setup_process(cfg: TrainConfig) -> Dist:
    """Join the process group, seed every RNG, and make CPU runs deterministic."""
    env = distributed.setup_distributed()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    if env.device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        _limit_cpu_threads(cfg.workers, env.world)
    return env


def _limit_cpu_threads(workers: int, world: int) -> None:
    """Leave cores to the data workers and the other ranks: oversubscribed intra-op threads spin
    and made a tiny model ~50x slower on a busy 2-core machine. OMP_NUM_THREADS wins if set."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    torch.set_num_threads(max(1, cores // world - workers))


def _check_out_dir(cfg: TrainConfig) -> Path:
    """--out, checked but not yet created (setup_run creates it once everything else passed): a
    fresh run refuses one that already holds checkpoints, and a file (also as --text-cache or
    --cache-features) or an unwritable place is refused before minutes of setup. Half-written
    checkpoints a killed run left are removed."""
    out = Path(cfg.out)
    folders = (("--out", cfg.out), ("--text-cache", cfg.text_cache))
    for flag, folder in (*folders, ("--cache-features", cfg.cache_features)):
        refusal = not_a_folder(flag, folder) if folder else None
        if refusal is not None:
            raise TrainError(refusal)
    if not cfg.resume and ckpt.step_dirs(out):
        raise TrainError(
            f"{out} already holds checkpoints; pass --resume to continue it or choose a new --out"
        )
    refusal = write_refusal(out)
    if refusal is not None:
        raise TrainError(f"--out {out}: {refusal}; choose a run directory on a writable disk")
    if distributed.is_main():
        for stale in ckpt.remove_stale_temporaries(out):
            log.info("removed %s, a checkpoint a killed run left half-written", stale)
    return out


def _check_batch_fits(cfg: TrainConfig, env: Dist, samples: int) -> None:
    """One step's batch must not repeat samples: a caption paired with itself is a false
    negative for the contrastive loss."""
    per_step = cfg.batch_size * env.world
    if per_step > samples:
        raise TrainError(
            f"--batch-size {cfg.batch_size} x {env.world} process(es) = {per_step} exceeds the "
            f"{samples} training samples of --data; pass --batch-size {samples // env.world} "
            "or less"
        )


def _vocab(cfg: TrainConfig, labels: TagLabels) -> VocabInfo:
    """The tags of the kinds --tag-kinds selects, in training order; refuses an empty set."""
    vocab = VocabInfo(labels.fingerprint, tuple(cfg.kinds), {k: labels.vocab[k] for k in cfg.kinds})
    if not vocab.tag_list:
        raise TrainError(
            f"{cfg.labels}: no {cfg.tag_kinds} tags in the vocabulary; run `tagparse vocab` "
            "with a non-zero count for them"
        )
    return vocab


def _resume_dir(out: Path, env: Dist) -> Path | None:
    """The newest intact checkpoint of `out` (damaged newer ones are reported and skipped)."""
    if not ckpt.step_dirs(out):
        log.info("--resume: no checkpoint in %s yet, starting from step 0", out)
        return None
    warn = log.warning if env.main else (lambda _message: None)
    return ckpt.resolve_checkpoint_dir(out, ckpt.FOR_RESUME, warn)


def _fresh_model(cfg: TrainConfig, env: Dist) -> TagAlignModel:
    return build_model(
        cfg.model,
        cfg.pretrained,
        cfg.dense,
        cfg.projector,
        image_size=cfg.image_size,
        init_seed=cfg.seed,
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
    if saved.train is not None:  # None for a checkpoint written outside the trainer
        compared += [(k, getattr(saved.train, k), getattr(cfg, k)) for k in RESUME_MUST_MATCH]
    for key, was, wanted in compared:
        if was != wanted:
            raise TrainError(
                f"{ckpt_dir}: --{key.replace('_', '-')} {wanted!r} differs from the run's "
                f"{was!r}; resume with the run's settings or use a new --out"
            )
    return model_from_config(saved.model, device=env.device, source=ckpt_dir)


def _recorded(pretrained: str | None) -> str:
    """--pretrained as a checkpoint records it (a weights file by its absolute path)."""
    if pretrained and os.path.isfile(pretrained):
        return str(Path(pretrained).resolve())
    return pretrained or "none"


def _samples(
    cfg: TrainConfig, labels: TagLabels, env: Dist
) -> tuple[SampleIndex, np.ndarray, np.ndarray, JoinStats]:
    """The data index, the positions used, their label rows, and the join statistics."""
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
    return index, use, label_rows, join


def _text_cache(cfg: TrainConfig) -> Path:
    if cfg.text_cache:
        return Path(cfg.text_cache)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tagalign-train" / "text"


def _loader(
    cfg: TrainConfig, env: Dist, dataset: Dataset, collate: BatchCollate, step: int
) -> DataLoader:
    """This rank's batches from optimizer step `step` to the end (see StepBatches)."""
    sampler = StepBatches(
        len(dataset),
        cfg.batch_size,
        env.world,
        env.rank,
        cfg.seed,
        start=step * cfg.accum,
        stop=cfg.steps * cfg.accum,
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.workers,
        collate_fn=collate,
        pin_memory=env.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if cfg.workers > 0 else None,
    )


def _distributed(step_module: TrainStep, env: Dist) -> nn.Module:
    if env.world == 1:
        return step_module
    device_ids = [env.local_rank] if env.device.type == "cuda" else None
    return DistributedDataParallel(step_module, device_ids=device_ids)
