"""Find a sample's image by key in a folder or in webdataset tar shards, and draw it in a terminal.

Shards are indexed lazily, one shard at a time until the key turns up, so opening a review over
a thousand shards costs nothing up front. Problems become an `ImageUnavailable` with a reason the
TUI shows in place of the picture.
"""

from __future__ import annotations

import glob
import io
import tarfile
import threading
from pathlib import Path

from tagparse.samplekey import split_key

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")


class ImageUnavailable(Exception):
    """No usable image for a key; the message is shown to the reviewer."""


class ImageSource:
    """Images under `root`: a folder of files (`<key>.<ext>`), a folder of `.tar` shards, one tar
    file, or a glob of tar files."""

    def __init__(self, root: str):
        self.root = root
        path = Path(root)
        self.folder = path if path.is_dir() else None
        if path.is_file():
            self.shards = [path]
        elif self.folder is not None:
            self.shards = sorted(self.folder.glob("*.tar"))
        else:
            self.shards = [Path(p) for p in sorted(glob.glob(root))]
        if self.folder is None and not self.shards:
            raise ImageUnavailable(f"{root}: no such image folder or tar shards")
        self._index: dict[str, tuple[Path, str]] = {}
        self._scanned = 0
        self._lock = threading.Lock()

    def load_bytes(self, key: str) -> tuple[bytes, str]:
        """(image bytes, where they came from) for `key`."""
        if self.folder is not None:
            for ext in IMAGE_EXTS:
                for candidate in (
                    self.folder / f"{key}.{ext}",
                    self.folder / f"{key}.{ext.upper()}",
                ):
                    if candidate.is_file():
                        return candidate.read_bytes(), candidate.name
        with self._lock:
            hit = self._find_in_shards(key)
        if hit is None:
            where = f"{len(self.shards)} shard(s)" if self.shards else f"{Path(self.root).name}/"
            raise ImageUnavailable(f"no image for key {key!r} in {where}")
        shard, member = hit
        try:
            with tarfile.open(shard) as tar:
                f = tar.extractfile(member)
                return f.read(), f"{shard.name}:{member}"
        except (OSError, tarfile.TarError, AttributeError) as e:
            raise ImageUnavailable(f"{shard}: cannot read {member} ({e})") from None

    def _find_in_shards(self, key: str) -> tuple[Path, str] | None:
        while key not in self._index and self._scanned < len(self.shards):
            shard = self.shards[self._scanned]
            self._scanned += 1
            try:
                with tarfile.open(shard) as tar:
                    for m in tar:
                        k, ext = split_key(m.name)
                        if m.isfile() and ext in IMAGE_EXTS:
                            self._index.setdefault(k, (shard, m.name))
                            self._index.setdefault(k.rpartition("/")[2], (shard, m.name))
            except (OSError, tarfile.TarError):
                continue  # an unreadable shard cannot hold the key; the others may
        return self._index.get(key)

    def load(self, key: str):
        """The decoded PIL image for `key`, or `ImageUnavailable` saying why not."""
        from PIL import Image, UnidentifiedImageError

        data, where = self.load_bytes(key)
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise ImageUnavailable(f"corrupt image {where}: {e}") from None
        return img


def render_halfblocks(img, width: int, height: int):
    """A rich renderable of `img` fitted into width x height cells (two pixels a cell, stacked)."""
    from rich_pixels import Pixels

    w, h = img.size
    scale = min(width / w, 2 * height / h)
    size = (max(1, int(w * scale)), max(2, int(h * scale) // 2 * 2))
    return Pixels.from_image(img.convert("RGB"), resize=size)
