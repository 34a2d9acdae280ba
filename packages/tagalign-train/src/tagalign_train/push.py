"""`tagalign-train push`: share a trained projector the way open_clip shares models, as a
Hugging Face Hub model repo (or a local folder in the same layout) that `hf-hub:ORG/NAME` and
`local-dir:PATH` load wherever a checkpoint is accepted (refs.py).

The layout: `model.safetensors` and `config.json` as the checkpoint holds them, a
`manifest.json` over those two (so a download is verified like any checkpoint), and a model card
`README.md`. Never `train_state.pt`: the optimizer and RNG state are for `--resume`, not for
users of the model, and only safetensors and JSON are shared.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tagparse.atomic import atomic_path

from tagalign_train.checkpoint import CONFIG, FOR_EVAL, WEIGHTS, read_config, resolve_checkpoint_dir
from tagalign_train.errors import TrainError, first_line
from tagalign_train.integrity import MANIFEST, manifest_text
from tagalign_train.model_card import model_card

#: The eval results `push` puts in the model card when the run folder holds them (tagalign-eval
#: --out RUN/results.json).
RESULTS = "results.json"


def shared_files(run: Path, repo_id: str, eval_results: Path | None) -> dict[str, bytes]:
    """The files of the shared layout (name -> bytes) for the newest intact checkpoint of `run`
    (or the checkpoint `run` names); `eval_results` (default RUN/results.json when there)
    gives the model card its eval table."""
    ckpt_dir = resolve_checkpoint_dir(run, FOR_EVAL)
    config = read_config(ckpt_dir)
    if eval_results is None and (run / RESULTS).is_file():
        eval_results = run / RESULTS
    table = _eval_table(eval_results) if eval_results else None
    payloads = {name: (ckpt_dir / name).read_bytes() for name in (WEIGHTS, CONFIG)}
    manifest = manifest_text(payloads).encode()
    card = model_card(config, repo_id, table, weights=payloads[WEIGHTS]).encode()
    return {**payloads, MANIFEST: manifest, "README.md": card}


def write_layout(files: dict[str, bytes], folder: Path) -> Path:
    """Write the layout as `folder`, atomically; a folder that exists and is not empty is
    refused (nothing of it is replaced)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise TrainError(
            f"--local-dir {folder} exists and is not an empty folder; choose a new folder"
        )
    with atomic_path(folder, directory=True) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return folder


def upload(files: dict[str, bytes], repo_id: str, private: bool) -> str:
    """Create (or reuse) the Hub model repo `repo_id` and upload the layout as one commit;
    returns the repo's URL. Any failure is one TrainError naming the endpoint."""
    from huggingface_hub import HfApi, constants

    endpoint = constants.ENDPOINT
    api = HfApi()
    with tempfile.TemporaryDirectory(prefix="tagalign-push-") as tmp:
        write_layout(files, Path(tmp) / "layout")
        try:
            url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            api.upload_folder(
                repo_id=repo_id,
                repo_type="model",
                folder_path=str(Path(tmp) / "layout"),
                commit_message="tagalign-train push",
            )
        except Exception as exc:  # network, auth, offline mode, refused id: no common base
            raise TrainError(
                f"push to {endpoint} as {repo_id} failed ({type(exc).__name__}: "
                f"{first_line(exc)}); check the network and HF_ENDPOINT, log in with "
                "`hf auth login` (or set HF_TOKEN), or write the layout with --local-dir DIR"
            ) from exc
    return str(url)


def _eval_table(path: Path) -> str:
    """The Markdown table of a tagalign-eval results.json."""
    try:
        table = json.loads(path.read_text()).get("table")
    except (OSError, ValueError, AttributeError) as exc:
        raise TrainError(f"--eval-results {path}: not a readable results.json ({exc})") from exc
    if not isinstance(table, str) or not table.strip():
        raise TrainError(
            f"--eval-results {path}: no `table` in it; pass the results.json that "
            "`tagalign-eval ... --out` wrote"
        )
    return table
