"""Checkpoints: the run directory layout, atomic writes, exact resume, and loading for eval.

Layout of a run directory::

    runs/NAME/checkpoints/step-0000100/{model.safetensors, config.json, train_state.pt,
                                        manifest.json}
    runs/NAME/latest              # one line: the name of the newest complete checkpoint

`model.safetensors` holds the trainable weights only (projector, head copies, loss temperatures
under `loss.`); `config.json` is a `CheckpointConfig` (see model_config.py for its versions);
`train_state.pt` holds what an exact resume needs besides the weights (optimizer, GradScaler,
every RNG, step, metric history) as plain data only (tensors, numbers, strings, lists, dicts),
so it is read with `torch.load(weights_only=True)`: a checkpoint someone shares cannot run code
on `--resume` (a pickle can). Older checkpoints kept numpy's RNG state as an array, which that
loader refuses; `convert_train_state` rewrites one the user trusts. `manifest.json`
(integrity.py) lists the others' sizes and SHA-256 and is written last. A checkpoint directory
is written under a temporary name and renamed into place, and `latest` (for people and tools) is
replaced by rename, so a run killed at any moment leaves the previous checkpoint intact; the
temporary a kill leaves behind is removed when the run starts again
(`remove_stale_temporaries`). Resume and eval trust a checkpoint only once it is intact; given a
run dir they fall back to its newest intact checkpoint with a warning.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from tagparse.atomic import atomic_path, atomic_write_text
from torch import nn

from tagalign_train import distributed
from tagalign_train.errors import TrainError, first_line
from tagalign_train.integrity import MANIFEST, damage, manifest_text
from tagalign_train.model import TagAlignModel, model_from_config
from tagalign_train.model_config import FORMAT, FORMAT_VERSION, CheckpointConfig
from tagalign_train.refs import checkpoint_location

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAIN_STATE = "train_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")
#: What a killed write leaves in checkpoints/: atomic_path's `.step-N.tmp-HOST-PID` (before it,
#: `.step-N.tmp-PID`), and the `.tmp-step-N` of trainers before that.
_STALE_TMP = re.compile(r"^\.(step-\d+\.tmp-(?:[^/]+-)?\d+|tmp-step-\d+.*)$")
_LOSS = "loss."  # prefix of the loss temperatures in model.safetensors
#: Files eval needs / files an exact resume needs.
FOR_EVAL = (WEIGHTS, CONFIG)
FOR_RESUME = (WEIGHTS, CONFIG, TRAIN_STATE)


def step_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first.

    A `step-N` that is a symbolic link or not a folder is refused (TrainError): the run would
    read a checkpoint from outside its folder, and `keep_last` would delete through the link."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name))]
    for _, path in found:
        if path.is_symlink() or not path.is_dir():
            what = f"a symbolic link to {os.readlink(path)}" if path.is_symlink() else "a file"
            raise TrainError(
                f"{path} is {what}, not a checkpoint folder of this run; a run's checkpoints "
                "are its own folders: replace it by a copy of the folder (cp -rL) or remove it"
            )
    return sorted(found)


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the half-written checkpoint folders a killed run left in checkpoints/; returns
    them. Only the main rank of a run writes checkpoints, so none of them is still in use."""
    root = Path(run_dir) / "checkpoints"
    stale = sorted(p for p in root.iterdir() if _STALE_TMP.match(p.name)) if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
    return stale


def resolve_checkpoint_dir(
    path: str | Path,
    required: tuple[str, ...] = FOR_EVAL,
    warn: Callable[[str], None] = log.warning,
) -> Path:
    """An intact checkpoint dir from a run dir, a checkpoint dir or its weights file.

    A checkpoint named directly must be intact (integrity.damage), else TrainError. A run dir
    gives its newest intact checkpoint (a step folder exists only once complete, so the newest
    one is newer than or equal to `latest`); each damaged newer one is reported through `warn`.
    TrainError when there is none.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        path = path.parent
    if (path / CONFIG).is_file() or (path / WEIGHTS).is_file():
        problem = damage(path, required)
        if problem:
            raise TrainError(
                f"{path}: damaged checkpoint: {problem}; restore it from a copy, or pass the "
                "run directory to use its newest intact checkpoint"
            )
        return path
    candidates = [p for _, p in reversed(step_dirs(path))]
    if not candidates:
        raise TrainError(
            f"{path}: not a tagalign-train run or checkpoint (no {CONFIG} + {WEIGHTS}, "
            f"no checkpoints/step-*); pass the --out directory of tagalign-train"
        )
    damaged = []
    for candidate in candidates:
        problem = damage(candidate, required)
        if problem is None:
            for bad, why in damaged:
                warn(f"{bad}: damaged checkpoint ({why}); using {candidate.name} instead")
            return candidate
        damaged.append((candidate, problem))
    first, why = damaged[0]
    raise TrainError(
        f"{path}: no intact checkpoint ({len(damaged)} damaged, newest {first.name}: {why}); "
        "restore the files from a copy"
    )


def read_config(ckpt_dir: Path) -> CheckpointConfig:
    """config.json of a checkpoint (any format version up to ours); refuses foreign files."""
    path = ckpt_dir / CONFIG
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise TrainError(f"{path}: not a tagalign-train checkpoint config")
    if int(raw.get("format_version", 0)) > FORMAT_VERSION:
        raise TrainError(
            f"{ckpt_dir}: checkpoint format v{raw['format_version']} is newer than "
            f"this tagalign-train (v{FORMAT_VERSION}); upgrade tagalign-train"
        )
    try:
        return CheckpointConfig.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise TrainError(f"{path}: malformed checkpoint config (missing or bad {exc})") from exc


def read_weights(ckpt_dir: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    return load_file(str(ckpt_dir / WEIGHTS), device=str(device))


def write_checkpoint(
    run_dir: Path,
    config: CheckpointConfig,
    weights: dict[str, torch.Tensor],
    train_state: dict | None,
    keep_last: int,
) -> Path:
    """Write step-N (N = config.step) atomically, point `latest` at it, keep the newest
    `keep_last`.

    Every file is serialised in memory and written with plain Python writes, so a full disk
    or a read-only folder is an OSError naming the file (torch.save to a path reports only
    "file write failed"), and the bytes written are the bytes the manifest describes.
    """
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{config.step:07d}"
    existing = step_dirs(run_dir)  # before anything is written: refuses a linked step folder
    tensors = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    payloads = {WEIGHTS: safetensors_bytes(tensors), CONFIG: config.to_json().encode()}
    if train_state is not None:
        buffer = io.BytesIO()
        torch.save(train_state, buffer)
        payloads[TRAIN_STATE] = buffer.getvalue()
    _write_checkpoint_dir(final, payloads)
    atomic_write_text(Path(run_dir) / "latest", final.name + "\n")
    if keep_last > 0:
        for _, old in sorted({*existing, (config.step, final)})[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write_checkpoint_dir(final: Path, payloads: dict[str, bytes]) -> None:
    """Write `payloads` (name -> bytes) and their manifest as folder `final`, replacing it
    atomically (a kill leaves the old folder or the new one, never a mix)."""
    with atomic_path(final, directory=True) as tmp:
        for name, data in payloads.items():
            _write(tmp / name, data, final / name)
        manifest = manifest_text(payloads).encode()
        _write(tmp / MANIFEST, manifest, final / MANIFEST)  # last: it vouches for the rest
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.exists():
            shutil.rmtree(final)


def _write(path: Path, data: bytes, shown: Path) -> None:
    """Write `data` to `path`; an OSError names `shown`, the file as the user will look for it
    (a failed write() names no file, and the temporary folder is gone by then)."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        exc.filename = str(shown)
        raise


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: where it is, its typed config.json, and the rebuilt model."""

    directory: Path
    config: CheckpointConfig
    model: TagAlignModel

    @property
    def files(self) -> list[Path]:
        """The files that define the model (what a result fingerprint should hash)."""
        return [self.directory / WEIGHTS, self.directory / CONFIG]


def load_checkpoint(
    path: str | Path,
    device: str | torch.device = "cpu",
    warn: Callable[[str], None] = log.warning,
) -> Checkpoint:
    """The model a tagalign-train run saved (a run dir's newest intact checkpoint; `warn` hears
    about each damaged newer one), or one shared as `hf-hub:ORG/NAME` or `local-dir:PATH`
    (refs.py), in eval mode."""
    ckpt_dir = resolve_checkpoint_dir(checkpoint_location(path), FOR_EVAL, warn)
    config = read_config(ckpt_dir)
    model = model_from_config(config.model, device=device, source=ckpt_dir)
    weights = read_weights(ckpt_dir, device)
    model.load_trainable_state_dict({k: v for k, v in weights.items() if not k.startswith(_LOSS)})
    return Checkpoint(ckpt_dir, config, model.eval())


def rng_state() -> dict[str, Any]:
    """Every generator a training step draws from (torch, CUDA, numpy, Python), as plain data
    (tensors, numbers, lists) that `torch.load(weights_only=True)` reads back."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return _plain_rng(state)


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].cpu().numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate(
        (python_state["version"], tuple(python_state["state"]), python_state["gauss_next"])
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _plain_rng(state: dict[str, Any]) -> dict[str, Any]:
    """numpy's and Python's RNG states as plain data, from the tuples their get_state returns
    (a live generator's, or an old checkpoint's); the plain form passes through."""
    numpy_state, python_state = state["numpy"], state["python"]
    plain = dict(state)
    if not isinstance(numpy_state, dict):
        kind, keys, pos, has_gauss, gauss = numpy_state
        plain["numpy"] = {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(gauss),
        }
    if not isinstance(python_state, dict):
        version, internal, gauss_next = python_state
        plain["python"] = {
            "version": int(version),
            "state": [int(x) for x in internal],
            "gauss_next": gauss_next,
        }
    return plain


#: What rebuilds the ndarray of numpy's RNG state in an old train_state.pt, and nothing else.
_OLD_STATE_GLOBALS = [np.ndarray, np.dtype, np.dtype(np.uint32).__class__]
_OLD_STATE_GLOBALS.append(
    np._core.multiarray._reconstruct
    if hasattr(np, "_core")
    else np.core.multiarray._reconstruct  # numpy < 2
)

#: The keys of train_state.pt; a conversion keeps these and drops anything else.
_STATE_KEYS = ("optimizer", "scaler", "rng", "step", "micro_step", "history")


def read_train_state(ckpt_dir: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """train_state.pt of a checkpoint, read with `weights_only=True`: plain data only, nothing
    in the file can run code. A file holding other objects (an old checkpoint's numpy arrays, or
    a planted object) is refused with the command that converts a checkpoint the user trusts."""
    path = ckpt_dir / TRAIN_STATE
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise TrainError(
            f"{path}: holds objects that are not plain data (tensors, numbers, lists), which "
            f"could run code when loaded, so it was not loaded ({first_line(exc, 160)}); a "
            "checkpoint from tagalign-train before 0.2 looks like this: if you trust where it "
            "comes from, convert it once with "
            f"`tagalign-train convert-checkpoint --trust {ckpt_dir}`"
        ) from exc


def convert_train_state(ckpt_dir: Path) -> Path:
    """Rewrite a trusted checkpoint's train_state.pt as plain data (what `read_train_state`
    loads) and its manifest; returns the checkpoint folder.

    An old file differs from today's only by numpy's RNG state, a pickled ndarray; it is read
    with `weights_only=True` widened by exactly the numpy globals that rebuild an array
    (`_OLD_STATE_GLOBALS`), so even a converted file never runs code: a planted object is still
    refused. The caller asks for `--trust` all the same, as the user's word that the training
    state is theirs. Only the keys an exact resume needs are kept, and the result is read back
    with plain `weights_only=True` before anything is replaced.
    """
    ckpt_dir = resolve_checkpoint_dir(ckpt_dir, FOR_RESUME)
    path = ckpt_dir / TRAIN_STATE
    try:
        with torch.serialization.safe_globals(_OLD_STATE_GLOBALS):
            old = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise TrainError(
            f"{path}: holds objects other than tensors, numbers and numpy arrays, which could "
            f"run code when loaded; not converted ({first_line(exc, 160)})"
        ) from exc
    except Exception as exc:  # whatever a foreign or damaged file raises
        raise TrainError(f"{path}: not a tagalign-train training state ({exc})") from exc
    if not isinstance(old, dict) or "optimizer" not in old or "rng" not in old:
        raise TrainError(f"{path}: not a tagalign-train training state (no optimizer/rng)")
    state = {key: old[key] for key in _STATE_KEYS if key in old}
    state["rng"] = _plain_rng(old["rng"])
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as exc:
        raise TrainError(
            f"{path}: still holds objects that are not plain data after conversion ({exc}); "
            "it was left as it was"
        ) from exc
    payloads = {name: (ckpt_dir / name).read_bytes() for name in (WEIGHTS, CONFIG)}
    payloads[TRAIN_STATE] = data
    _write_checkpoint_dir(ckpt_dir, payloads)
    return ckpt_dir


@dataclass
class TrainState:
    """What a checkpoint saves and an exact resume restores: the trainable modules, optimizer,
    GradScaler (fp16 only), the step reached and the metric history logged so far."""

    model: TagAlignModel
    loss: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    step: int = 0
    history: list[dict] = field(default_factory=list)

    def save(
        self, run_dir: Path, config: CheckpointConfig, *, accum: int, keep_last: int, main: bool
    ) -> Path:
        """Write checkpoint step-N of the run `config` describes, on the main rank (the others
        wait for it); returns its directory."""
        path = Path(run_dir) / "checkpoints" / f"step-{self.step:07d}"
        if main:
            weights = {
                **self.model.trainable_state_dict(),
                **{f"{_LOSS}{k}": v for k, v in self.loss.state_dict().items()},
            }
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "rng": rng_state(),
                "step": self.step,
                "micro_step": self.step * accum,
                "history": self.history,
            }
            config = replace(config, step=self.step)
            path = write_checkpoint(run_dir, config, weights, state, keep_last)
        distributed.barrier()
        return path

    def restore(self, ckpt_dir: Path, device: torch.device) -> None:
        """Weights, optimizer, scaler, RNG, step and history of checkpoint `ckpt_dir`."""
        weights = read_weights(ckpt_dir, device)
        n = len(_LOSS)
        self.model.load_trainable_state_dict(
            {k: v for k, v in weights.items() if not k.startswith(_LOSS)}
        )
        self.loss.load_state_dict({k[n:]: v for k, v in weights.items() if k.startswith(_LOSS)})
        state = read_train_state(ckpt_dir, device)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.step, self.history = int(state["step"]), state.get("history", [])
