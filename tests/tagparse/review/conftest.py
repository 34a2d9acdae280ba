"""Fixtures of the review tests: real tags.db files (see `review_fixtures.py`) and image folders."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from PIL import Image
from review_fixtures import make_tags_db
from tagparse.db import TagsDB


@pytest.fixture
def anyio_backend() -> str:
    """The pilot tests are async (`pytest.mark.anyio`); Textual runs on asyncio."""
    return "asyncio"


async def settle(pilot) -> None:
    """Wait for the image workers still running (cancelled ones skipped), then for the screen."""
    from textual.worker import WorkerCancelled

    for worker in list(pilot.app.workers):
        if not worker.is_cancelled:
            with contextlib.suppress(WorkerCancelled):
                await worker.wait()
    await pilot.pause()


@pytest.fixture(name="settle")
def settle_fixture():
    return settle


@pytest.fixture
def tags_db(tmp_path: Path) -> Path:
    return make_tags_db(tmp_path / "tags.db")


@pytest.fixture
def empty_db(tmp_path: Path) -> Path:
    TagsDB.open(tmp_path / "tags.db", create=True).close()
    return tmp_path / "tags.db"


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """img001.png is a real picture (sky over grass, a brown square), img002.jpg is corrupt."""
    folder = tmp_path / "images"
    folder.mkdir()
    img = Image.new("RGB", (64, 48), (90, 160, 230))
    img.paste((40, 150, 60), (0, 30, 64, 48))
    img.paste((140, 90, 40), (20, 18, 40, 38))
    img.save(folder / "img001.png")
    (folder / "img002.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return folder
