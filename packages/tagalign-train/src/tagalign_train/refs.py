"""Checkpoint references: where a `--checkpoint` value points, as open_clip names its models.

- `hf-hub:org/name`: a projector shared with `tagalign-train push`, read from the Hugging Face
  Hub (or from its local cache; with `HF_HUB_OFFLINE=1` only from the cache);
- `local-dir:PATH`: the same layout in a local folder (what `push --local-dir` writes); like
  open_clip's `local-dir:` for CLIP models, a folder laid out as its Hub repo would be;
- anything else: a path (a run dir, a checkpoint dir or its model.safetensors).

Only the files a shared projector holds are downloaded: safetensors weights and JSON, which run
no code when read.
"""

from __future__ import annotations

from pathlib import Path

from tagalign_train.errors import TrainError, first_line

HF_HUB = "hf-hub:"
LOCAL_DIR = "local-dir:"
#: What a download takes from a Hub repo (the push layout; nothing executable or pickled).
_SHARED_PATTERNS = ["*.safetensors", "*.json", "README.md"]


def is_reference(value: str | Path) -> bool:
    """Whether `value` is an `hf-hub:` or `local-dir:` reference rather than a plain path."""
    return str(value).startswith((HF_HUB, LOCAL_DIR))


def checkpoint_location(value: str | Path) -> Path:
    """The local folder (or path) a checkpoint reference names, downloading an `hf-hub:` repo
    into the Hugging Face cache first; TrainError says what is wrong in one line."""
    text = str(value)
    if text.startswith(HF_HUB):
        return _hub_snapshot(text, text[len(HF_HUB) :])
    if text.startswith(LOCAL_DIR):
        folder = Path(text[len(LOCAL_DIR) :])
        if not folder.is_dir():
            raise TrainError(
                f"{text}: {folder} is not a folder; pass the folder `tagalign-train push "
                "--local-dir` wrote (or a run dir without the local-dir: prefix)"
            )
        return folder
    return Path(value)


def _hub_snapshot(reference: str, repo_id: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
    )

    if not repo_id:
        raise TrainError(f"{reference}: no repo id; write it as hf-hub:ORG/NAME")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_SHARED_PATTERNS))
    except HFValidationError as exc:
        raise TrainError(f"{reference}: not a Hub repo id ({exc}); write hf-hub:ORG/NAME") from exc
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        if constants.HF_HUB_OFFLINE:
            raise TrainError(
                f"{reference}: not in the local Hugging Face cache, and HF_HUB_OFFLINE=1 "
                "forbids downloading it; download it once with HF_HUB_OFFLINE unset, or pass "
                "local-dir:PATH to a copy"
            ) from exc
        raise TrainError(
            f"{reference}: not in the local Hugging Face cache, and the Hub at "
            f"{constants.ENDPOINT} cannot be reached ({first_line(exc)}); check the network "
            "and HF_ENDPOINT, or pass local-dir:PATH to a copy"
        ) from exc
    except HfHubHTTPError as exc:
        raise TrainError(
            f"{reference}: the Hub refused the download ({first_line(exc)}); check the repo "
            "id, and log in with `hf auth login` for a private repo"
        ) from exc
