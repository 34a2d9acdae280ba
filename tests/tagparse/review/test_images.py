"""Images by key from a folder and from webdataset tar shards; reasons for missing/corrupt ones."""

from __future__ import annotations

import io
import tarfile

import pytest
from PIL import Image
from rich.console import Console
from tagparse.review.images import ImageSource, ImageUnavailable, render_halfblocks


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, format="PNG")
    return buf.getvalue()


def test_folder_lookup_and_reasons(image_dir):
    source = ImageSource(str(image_dir))
    assert source.load("img001").size == (64, 48)
    with pytest.raises(ImageUnavailable, match="corrupt image img002.jpg"):
        source.load("img002")
    with pytest.raises(ImageUnavailable, match="no image for key 'img404'"):
        source.load("img404")


def test_webdataset_shards(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    for n, keys in enumerate([["a/000", "a/001"], ["b/002"]]):
        with tarfile.open(shards / f"{n:05d}.tar", "w") as tar:
            for key in keys:
                for ext, data in (("jpg", _png((200, 0, 0))), ("txt", b"a caption")):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    source = ImageSource(str(shards))
    assert source.load("b/002").size == (8, 6)
    assert source.load("000").getpixel((0, 0)) == (200, 0, 0)  # the basename works too
    assert ImageSource(str(shards / "*.tar")).load("a/001").size == (8, 6)
    with pytest.raises(ImageUnavailable, match="in 2 shard"):
        source.load("c/999")
    with pytest.raises(ImageUnavailable, match="no such image folder"):
        ImageSource(str(tmp_path / "nowhere"))


def test_halfblock_render_fits_the_box(image_dir):
    img = ImageSource(str(image_dir)).load("img001")
    console = Console(width=40, record=True, color_system="truecolor")
    console.print(render_halfblocks(img, 20, 10))
    lines = console.export_text().rstrip("\n").splitlines()
    assert 0 < len(lines) <= 10 and max(len(line.rstrip()) for line in lines) <= 20
    assert "▄" in "".join(lines) or "▀" in "".join(lines)
