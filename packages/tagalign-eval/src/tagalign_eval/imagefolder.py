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
from tagalign_eval.uniquejson import loads_unique

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
    """`--class-map FILE`: a JSON object {folder: name}, or text lines `FOLDER<tab>NAME` (or
    `FOLDER NAME`, split at the first run of spaces); blank and `#` lines are skipped, a UTF-8
    BOM is ignored.

    A folder given twice, an empty folder or name, and one name for two folders are refused:
    each would silently change which prompt scores which images."""
    p = Path(path)
    if p.is_dir():
        raise EvalError(f"--class-map {p} is a folder; pass a folder -> name mapping file")
    if not p.is_file():
        raise EvalError(f"--class-map {p}: no such file; pass a folder -> name mapping file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise EvalError(f"--class-map {p}: cannot read it as UTF-8 text ({exc})") from None
    source = f"--class-map {p}"
    is_json = p.suffix.lower() == ".json"
    entries = _json_entries(text, source) if is_json else _text_entries(text, source)
    mapping: dict[str, str] = {}
    where_given: dict[str, str] = {}
    folder_of_name: dict[str, str] = {}
    for where, folder, name in entries:
        if folder in mapping:  # a JSON key given twice is refused while parsing
            raise EvalError(
                f"{source}: folder {folder!r} is given twice ({where_given[folder]}: "
                f"{mapping[folder]!r}, {where}: {name!r}); give each folder once"
            )
        if name in folder_of_name:
            other = folder_of_name[name]
            raise EvalError(
                f"{source}: {where_given[other]} (folder {other!r}) and {where} (folder "
                f"{folder!r}) both name the class {name!r}; two classes with one name cannot "
                "be told apart, give each its own name"
            )
        mapping[folder], where_given[folder], folder_of_name[name] = name, where, folder
    return mapping


def _json_entries(text: str, source: str) -> list[tuple[str, str, str]]:
    """(where, folder, name) of each entry of a JSON object {folder: name}."""
    try:
        mapping = loads_unique(text, source)
    except json.JSONDecodeError as exc:
        raise EvalError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(mapping, dict):
        raise EvalError(f'{source}: must be a JSON object {{"folder": "class name"}}')
    entries = []
    for folder, name in mapping.items():
        if not folder.strip():
            raise EvalError(
                f"{source}: an empty key (for {name!r}); key each class name by its folder"
            )
        if not isinstance(name, str) or not name.strip():
            raise EvalError(
                f"{source}: key {folder!r} has the class name {name!r}, not a non-empty "
                'string; write {"folder": "class name"}'
            )
        entries.append((f"key {folder.strip()!r}", folder.strip(), name.strip()))
    return entries


def _text_entries(text: str, source: str) -> list[tuple[str, str, str]]:
    """(where, folder, name) of each `FOLDER<tab>NAME` / `FOLDER NAME` line."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        body = line.rstrip()
        folder, _, name = body.partition("\t") if "\t" in body else stripped.partition(" ")
        missing = "folder" if not folder.strip() else "class name" if not name.strip() else None
        if missing:
            raise EvalError(
                f"{source} line {number}: {stripped!r} has no {missing}; write "
                "FOLDER<tab>NAME (or FOLDER NAME)"
            )
        entries.append((f"line {number}", folder.strip(), name.strip()))
    return entries


def open_image_folder(root: str | Path, classes: str | Path | None = None) -> ImageFolder:
    """The dataset under `root`, its classes named by the mapping file `classes` if given."""
    base = Path(root)
    if base.is_file():
        raise EvalError(f"{base} is a file; pass a folder with one sub-folder per class")
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
                f"--class-map {classes} names no class for folder(s) {', '.join(unnamed[:5])}; "
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
