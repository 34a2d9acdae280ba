"""An image-folder classification dataset: `root/CLASS/*.jpg|jpeg|png`, one folder per class.

The class names are the folder names, or come from a mapping file (folder -> name), the way
ImageNet-style folders (`n01440764/`) get readable names. Everything is checked when the dataset
is opened, before a model loads: a missing root, a root without class folders, an empty class
folder, a folder the mapping does not name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tagalign_eval.errors import EvalError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class ImageFolder:
    """Image `i` is `paths[i]`, of class `targets[i]`, named `names[targets[i]]`."""

    root: Path
    folders: tuple[str, ...]
    """Class folders, sorted; class `c` is `folders[c]`."""
    names: tuple[str, ...]
    """The class names the prompts are made of (`folders` unless a mapping renames them)."""
    class_source: str
    """Where the names came from: `folders` or the mapping file."""
    paths: tuple[Path, ...]
    targets: tuple[int, ...]


def _class_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_class_mapping(path: str | Path) -> dict[str, str]:
    """`--classes FILE`: a JSON object {folder: name}, or text lines `FOLDER<tab>NAME` (or
    `FOLDER NAME`, split at the first run of spaces); blank and `#` lines are skipped."""
    p = Path(path)
    if not p.is_file():
        raise EvalError(f"--classes {p}: no such file; pass a folder -> name mapping file")
    try:
        text = p.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise EvalError(f"--classes {p}: cannot read it as UTF-8 text ({exc})") from None
    if p.suffix.lower() == ".json":
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvalError(f"--classes {p}: not valid JSON ({exc})") from None
        if not isinstance(mapping, dict) or not all(
            isinstance(v, str) and v.strip() for v in mapping.values()
        ):
            raise EvalError(f'--classes {p}: must be a JSON object {{"folder": "class name"}}')
        return {str(k): v.strip() for k, v in mapping.items()}
    mapping = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        folder, _, name = line.partition("\t") if "\t" in line else line.partition(" ")
        if not name.strip():
            raise EvalError(
                f"--classes {p} line {number}: {line!r} has no class name; write "
                "FOLDER<tab>NAME (or FOLDER NAME)"
            )
        mapping[folder.strip()] = name.strip()
    return mapping


def open_image_folder(root: str | Path, classes: str | Path | None = None) -> ImageFolder:
    """The dataset under `root`, its classes named by the mapping file `classes` if given."""
    base = Path(root)
    if not base.is_dir():
        raise EvalError(f"{base}: no such folder; pass a folder with one sub-folder per class")
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise EvalError(
            f"{base}: no class folders; put each class's images in root/CLASS/ (jpg or png)"
        )
    paths: list[Path] = []
    targets: list[int] = []
    for index, folder in enumerate(folders):
        images = _class_images(folder)
        if not images:
            raise EvalError(
                f"{folder}: class folder without images ({', '.join(IMAGE_SUFFIXES)}); add its "
                "images or remove the folder"
            )
        paths += images
        targets += [index] * len(images)
    names = [f.name for f in folders]
    if classes is not None:
        mapping = read_class_mapping(classes)
        unnamed = [n for n in names if n not in mapping]
        if unnamed:
            raise EvalError(
                f"--classes {classes} names no class for folder(s) {', '.join(unnamed[:5])}; "
                "add a line FOLDER<tab>NAME for each"
            )
        names = [mapping[n] for n in names]
    return ImageFolder(
        base,
        tuple(f.name for f in folders),
        tuple(names),
        "folders" if classes is None else str(classes),
        tuple(paths),
        tuple(targets),
    )
