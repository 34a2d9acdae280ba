"""Checkpoint files: trainable weights as safetensors + config.json, written atomically.

Layout of a run directory::

    runs/NAME/checkpoints/step-0000100/{model.safetensors, config.json, train_state.pt}
    runs/NAME/latest              # one line: the name of the newest complete checkpoint

A checkpoint directory is written under a temporary name and renamed into place, and `latest` is
replaced by rename, so a run killed at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tagalign_train.errors import TrainError

FORMAT = "tagalign-train"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAIN_STATE = "train_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def step_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name))]
    return sorted(found)


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """A checkpoint dir from a run dir, a checkpoint dir or its weights file; else TrainError."""
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        path = path.parent
    if (path / CONFIG).is_file() and (path / WEIGHTS).is_file():
        return path
    latest = path / "latest"
    if latest.is_file():
        candidate = path / "checkpoints" / latest.read_text().strip()
        if (candidate / WEIGHTS).is_file():
            return candidate
    steps = step_dirs(path)
    if steps:
        return steps[-1][1]
    raise TrainError(
        f"{path}: not a tagalign-train run or checkpoint (no {CONFIG} + {WEIGHTS}, "
        f"no checkpoints/step-*); pass the --out directory of tagalign-train"
    )


def read_config(ckpt_dir: Path) -> dict:
    """config.json of a checkpoint; refuses files not written by tagalign-train."""
    try:
        config = json.loads((ckpt_dir / CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainError(f"{ckpt_dir / CONFIG}: unreadable ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise TrainError(f"{ckpt_dir / CONFIG}: not a tagalign-train checkpoint config")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise TrainError(
            f"{ckpt_dir}: checkpoint format v{config['format_version']} is newer than "
            f"this tagalign-train (v{FORMAT_VERSION}); upgrade tagalign-train"
        )
    return config


def read_weights(ckpt_dir: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    return load_file(str(ckpt_dir / WEIGHTS), device=str(device))


def write_checkpoint(
    run_dir: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    config: dict,
    train_state: dict | None,
    keep_last: int,
) -> Path:
    """Write step-N atomically, point `latest` at it, and prune to the newest `keep_last`."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(tmp / WEIGHTS))
    (tmp / CONFIG).write_text(json.dumps(config, indent=1))
    if train_state is not None:
        torch.save(train_state, tmp / TRAIN_STATE)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _atomic_write_text(Path(run_dir) / "latest", final.name + "\n")
    if keep_last > 0:
        for _, old in step_dirs(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final
