"""The training loop: `setup_run` (run.py) builds everything once, `train_loop` steps through it.

`train(TrainConfig)` is the Python API; `tagalign-train` (cli.py) is a thin layer over it. One
process or `torchrun` DDP; a checkpoint every `save_every` steps resumes bit-exactly.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from tagalign_train import distributed
from tagalign_train.config import TrainConfig
from tagalign_train.distributed import Dist
from tagalign_train.errors import TrainError, faults_as_train_errors
from tagalign_train.metrics import MetricsLog
from tagalign_train.run import Run, setup_run
from tagalign_train.tracking import Tracker, open_trackers


@dataclass
class RunResult:
    """What `train` returns: the run dir, the step reached, its last checkpoint, the logged
    metrics and the data/label join statistics."""

    out: Path
    step: int
    checkpoint: Path | None
    history: list[dict]
    join: dict


def train(cfg: TrainConfig) -> RunResult:
    """Run (or resume) training; returns the final step, checkpoint and the logged metrics.

    A user mistake, and a fault the user can fix (disk full, read-only folder, no permission),
    ends as one TrainError naming the file.

    The process-wide settings a run needs (deterministic algorithms, intra-op threads) are
    restored afterwards, so notebooks and test sessions are left as they were.
    """
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        with faults_as_train_errors():
            return train_loop(setup_run(cfg.resolved()))
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
        with MetricsLog(run.out, env.main, _trackers(run)) as metrics:
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


def _trackers(run: Run) -> list[Tracker]:
    """The `--report-to` trackers, on the main rank only; a resumed run does not log its name
    and config again."""
    if not run.env.main:
        return []
    return open_trackers(
        run.cfg.reporters,
        run.out,
        run.config.to_dict(),
        fresh=run.state.step == 0,
        wandb_project=run.cfg.wandb_project_name,
    )


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
