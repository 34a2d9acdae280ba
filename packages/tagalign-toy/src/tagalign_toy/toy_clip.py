"""The toy CLIP's identity and files: its config, its pretraining recipe, and its weights folder.

The toy world's stand-in for a pretrained CLIP is a tiny open_clip model trained from scratch on
ToyShapes (see `pretrain`). Its weights are an open_clip `local-dir:` folder
(`open_clip_config.json` + `open_clip_model.safetensors`), the format open_clip loads without a
registered model name, so the trainer and the evaluator take it as `--model local-dir:DIR` and
ship no toy artifact themselves. A folder is named by a digest of (generator version, model config,
recipe), so weights from another world or recipe can never be picked up by mistake.

Pretraining a toy CLIP that knows the world takes about 20 minutes on one CPU thread, so this
package ships the default recipe's weights (`weights/`, fp16, written by
`scripts/pretrain_toy_clip.py`), the way real CLIP weights are downloaded rather than retrained.

open_clip, torch, safetensors and the trainer's preprocessing are imported inside the functions
that use them: the demo's CLI needs only the recipe, and `tagalign-demo --help` or a usage error
must not wait for torch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tagparse.atomic import atomic_path

from tagalign_toy.scene import SHAPES, TOYSHAPES_VERSION

if TYPE_CHECKING:
    import torch

TOY_CLIP_NAME = "toy-clip"
PRETRAIN_VERSION = "3"
CONFIG_FILE = Path(__file__).parent / f"{TOY_CLIP_NAME}.json"
SHIPPED_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = "open_clip_model.safetensors"
LOCAL_CONFIG_FILE = "open_clip_config.json"
#: Images per pretraining sibling group: one per shape.
SIBLINGS = len(SHAPES)


def toy_clip_config() -> dict:
    """The open_clip model config (embed_dim, vision_cfg, text_cfg) of the toy CLIP."""
    return json.loads(CONFIG_FILE.read_text(encoding="utf-8"))


def register_toy_clip() -> None:
    """Make `toy-clip` known to open_clip by name, for training a fresh one from its config."""
    import open_clip

    if TOY_CLIP_NAME not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_FILE)


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that decides the weights: the pretraining data and the optimisation.

    The data is `groups` sibling groups of `generator.make_pretrain_group` (six images each);
    a batch holds `batch_size // 6` whole groups."""

    groups: int = 4000
    steps: int = 3500
    batch_size: int = 60
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 500
    decay: int = 1500
    """The last `decay` steps lower the learning rate linearly to zero (0: constant to the end,
    so that the weights after N steps are those of the recipe with `steps=N`)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size % SIBLINGS or self.batch_size // SIBLINGS > self.groups:
            raise ValueError(
                f"batch_size {self.batch_size} must be a multiple of {SIBLINGS} (whole sibling "
                f"groups) and hold at most `groups` ({self.groups}) groups"
            )

    @property
    def digest(self) -> str:
        """Identity of the weights: generator version, model config and this recipe."""
        ident = json.dumps(
            {
                "generator": TOYSHAPES_VERSION,
                "config": toy_clip_config(),
                "recipe": asdict(self),
                "version": PRETRAIN_VERSION,
            },
            sort_keys=True,
        )
        return hashlib.sha256(ident.encode()).hexdigest()[:12]

    @property
    def dirname(self) -> str:
        """The weights folder's name."""
        return f"{TOY_CLIP_NAME}-{self.digest}"


#: The recipe of the shipped weights (what the demo uses unless told otherwise).
DEFAULT_RECIPE = PretrainRecipe()


def model_spec(weights_dir: Path) -> str:
    """What `--model` takes for a toy CLIP folder (absolute, so a run's config.json stays valid)."""
    import open_clip

    return f"{open_clip.factory.LOCAL_DIR_PREFIX}{Path(weights_dir).resolve()}"


def shipped_weights(recipe: PretrainRecipe) -> Path | None:
    """The packaged weights folder of `recipe`, if this recipe is the one that was shipped."""
    path = SHIPPED_DIR / recipe.dirname
    return path if (path / WEIGHTS_FILE).is_file() else None


def save_toy_clip(
    state: dict[str, torch.Tensor], out: Path, dtype: torch.dtype | None = None
) -> Path:
    """Write a state dict as an open_clip `local-dir:` folder, atomically (optionally cast, e.g.
    fp16 for shipping). An existing folder at `out` is replaced."""
    from safetensors.torch import save_file
    from tagalign_train.preprocess import NORMALIZATIONS

    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
        for k, v in state.items()
    }
    mean, std = NORMALIZATIONS["imagenet"]  # what the toy CLIP was pretrained with
    local_config = {
        "model_cfg": toy_clip_config(),
        "preprocess_cfg": {"mean": list(mean), "std": list(std)},
    }
    stale = out.with_name(f".{out.name}.stale")
    with atomic_path(out, directory=True) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        (tmp / LOCAL_CONFIG_FILE).write_text(json.dumps(local_config, indent=2) + "\n")
        if out.exists():
            out.rename(stale)
    shutil.rmtree(stale, ignore_errors=True)
    return out


def load_toy_clip(weights_dir: Path):
    """The toy CLIP through open_clip's normal loading path: (model, preprocess, tokenizer)."""
    import open_clip

    spec = model_spec(weights_dir)
    model, _, preprocess = open_clip.create_model_and_transforms(spec)
    return model.eval(), preprocess, open_clip.get_tokenizer(spec)
