"""Is a checkpoint intact? Its manifest (sizes + SHA-256 of every file, written last), or for a
checkpoint from before manifests, whether each file parses.

A checkpoint directory is renamed into place only once complete, but a file can still be
damaged afterwards: a copy cut short by a full disk, an interrupted rsync, a bad sector. Resume
and eval verify before they trust a checkpoint, so damage is reported, and a run dir falls back
to its newest intact checkpoint, instead of a traceback from deep inside torch or safetensors.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from safetensors import SafetensorError, safe_open

MANIFEST = "manifest.json"
_FORMAT = "tagalign-train-manifest"


def manifest_text(payloads: Mapping[str, bytes]) -> str:
    """The manifest of the files `payloads` (name -> bytes) holds."""
    files = {
        name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in sorted(payloads.items())
    }
    return json.dumps({"format": _FORMAT, "files": files}, indent=1)


def damage(ckpt_dir: Path, required: tuple[str, ...]) -> str | None:
    """What is wrong with checkpoint `ckpt_dir` (one phrase naming the file), or None if the
    files in `required` are all there and intact."""
    for name in required:
        if not (ckpt_dir / name).is_file():
            return f"{name} is missing"
    outside = _link_out_of(ckpt_dir, (*required, MANIFEST))
    if outside:
        return outside
    manifest = ckpt_dir / MANIFEST
    if manifest.is_file():
        return _against_manifest(ckpt_dir, manifest, required)
    return _unparseable(ckpt_dir, required)


def _link_out_of(ckpt_dir: Path, names: Iterable[str]) -> str | None:
    """A file of the checkpoint that lies outside its folder (a symbolic link pointing out, or a
    manifest entry like `../x`): a shared checkpoint could make a run read, and a manifest vouch
    for, any file on the machine."""
    home = ckpt_dir.resolve()
    for name in names:
        path = ckpt_dir / name
        target = path.resolve()
        if not target.is_relative_to(home):
            how = "a symbolic link to" if path.is_symlink() else "a path to"
            return (
                f"{name} is {how} {target}, outside the checkpoint folder (refused; copy the "
                "file into the folder if you trust it)"
            )
    return None


def _against_manifest(ckpt_dir: Path, manifest: Path, required: tuple[str, ...]) -> str | None:
    try:
        listed = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{MANIFEST} is unreadable ({exc})"
    if not isinstance(listed, dict):
        return f"{MANIFEST} is unreadable (its files are not an object)"
    for name in required:
        if name not in listed:
            return f"{name} is not in {MANIFEST}"
    outside = _link_out_of(ckpt_dir, listed)
    if outside:
        return outside
    for name, expected in listed.items():
        path = ckpt_dir / name
        size = path.stat().st_size if path.is_file() else None
        if size != expected["size"]:
            found = "missing" if size is None else f"{size} bytes"
            return f"{name} is {found}, {MANIFEST} says {expected['size']} (truncated or replaced)"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match its SHA-256 in {MANIFEST} (damaged)"
    return None


def _unparseable(ckpt_dir: Path, required: tuple[str, ...]) -> str | None:
    """A checkpoint written before manifests: each safetensors header must cover its file, each
    torch zip archive must pass its CRC check and each JSON file must parse."""
    for name in required:
        path = ckpt_dir / name
        try:
            if name.endswith(".json"):
                json.loads(path.read_bytes())
            elif name.endswith(".safetensors"):
                with safe_open(str(path), "pt"):
                    pass
            elif name.endswith(".pt"):
                with zipfile.ZipFile(path) as archive:
                    bad = archive.testzip()
                if bad is not None:
                    return f"{name} is damaged (bad CRC in {bad})"
        except (SafetensorError, zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            return f"{name} is unreadable ({str(exc).splitlines()[0] if str(exc) else exc!r})"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
