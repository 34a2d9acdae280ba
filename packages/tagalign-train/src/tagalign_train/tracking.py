"""Experiment trackers behind `--report-to` (open_clip's flag): TensorBoard and Weights & Biases.

Each tracker receives the same entries as `metrics.jsonl`, as `train/<key>` scalars at their
optimizer step (open_clip's naming), and the run's name and config once, when the run starts
fresh. Both packages are optional extras; config.parse_report_to has refused a tracker that is
not installed before any of this is imported.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

from tagalign_train.errors import TrainError, first_line

#: The folder under the run dir that holds TensorBoard's event files (open_clip's name).
TENSORBOARD_DIR = "tensorboard"


class Tracker(Protocol):
    def log(self, step: int, values: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class TensorBoardTracker:
    """Event files in `out/tensorboard/`; the run name and config as text at step 0."""

    def __init__(self, out: Path, run_name: str, config: dict[str, Any], fresh: bool):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(out / TENSORBOARD_DIR))
        if fresh:
            self.writer.add_text("run_name", run_name, 0)
            self.writer.add_text("config", f"```json\n{json.dumps(config, indent=1)}\n```", 0)

    def log(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    """A wandb run under `out/wandb/` (WANDB_MODE=offline keeps it there, no network needed;
    `wandb sync` uploads it later). A resumed training run continues the same wandb run: its
    id comes from the run dir, not from chance."""

    def __init__(self, out: Path, run_name: str, config: dict[str, Any], project: str):
        import wandb

        try:
            self.run = wandb.init(
                project=project,
                name=run_name,
                id=wandb_run_id(out),
                resume="allow",
                dir=str(out),
                config=config,
                # Our stdout/stderr stay ours: progress lines, `warning:` and `error:` lines.
                settings=wandb.Settings(console="off", quiet=True),
            )
        except Exception as exc:  # wandb's own errors (no login, no network) have no common base
            raise TrainError(
                f"--report-to wandb: wandb could not start a run ({first_line(exc)}); run "
                "`wandb login`, or set WANDB_MODE=offline to keep the run in --out and "
                "`wandb sync` it later"
            ) from exc

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log({f"train/{key}": value for key, value in values.items()}, step=step)

    def close(self) -> None:
        self.run.finish()


def wandb_run_id(out: Path) -> str:
    """A stable wandb id for the run dir `out`: its name plus a hash of its absolute path (two
    runs both called `run1` in different folders stay two wandb runs)."""
    path = str(Path(out).resolve())
    return f"{Path(path).name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def open_trackers(
    reporters: tuple[str, ...],
    out: Path,
    config: dict[str, Any],
    *,
    fresh: bool,
    wandb_project: str,
) -> list[Tracker]:
    """The trackers `reporters` names (config.parse_report_to), started for run dir `out`;
    `config` is what config.json records; `fresh` is False for a resumed run, whose name and
    config the trackers already hold."""
    run_name = Path(out).resolve().name
    trackers: list[Tracker] = []
    for name in reporters:
        if name == "tensorboard":
            trackers.append(TensorBoardTracker(out, run_name, config, fresh))
        elif name == "wandb":
            trackers.append(WandbTracker(out, run_name, config, wandb_project))
    return trackers
