"""`tagparse.atomic`: a write either replaces the target whole or leaves it (and no temporary)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tagparse.atomic import atomic_path, atomic_write_text, remove_dead_temporaries


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def test_write_text_creates_and_replaces(tmp_path):
    dest = tmp_path / "results.json"
    atomic_write_text(dest, "first")
    assert dest.read_text(encoding="utf-8") == "first"
    atomic_write_text(dest, "zweite Fassung ✓")
    assert dest.read_text(encoding="utf-8") == "zweite Fassung ✓"
    assert _siblings(dest) == ["results.json"]


def test_success_replaces_the_old_file(tmp_path):
    dest = tmp_path / "weights.bin"
    dest.write_bytes(b"old")
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp != dest
        tmp.write_bytes(b"new")
        assert dest.read_bytes() == b"old"  # readers see the old file until the rename
    assert dest.read_bytes() == b"new"
    assert _siblings(dest) == ["weights.bin"]


def test_exception_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    dest = tmp_path / "cache.npy"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="killed mid-write"), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert dest.read_bytes() == b"old"
    assert _siblings(dest) == ["cache.npy"]


def test_exception_before_anything_is_written_leaves_no_target(tmp_path):
    dest = tmp_path / "never.txt"
    with pytest.raises(KeyboardInterrupt), atomic_path(dest):
        raise KeyboardInterrupt
    assert _siblings(dest) == []


def test_a_stale_temporary_is_cleared_first(tmp_path):
    dest = tmp_path / "out.txt"
    with atomic_path(dest) as tmp:  # learn the temporary's name
        tmp.write_text("first")
    tmp.write_text("left over by a killed process")
    atomic_write_text(dest, "fresh")
    assert dest.read_text() == "fresh"
    assert not tmp.exists()


def test_directory_mode_fills_an_empty_folder_then_renames_it(tmp_path):
    dest = tmp_path / "checkpoint"
    with atomic_path(dest, directory=True) as tmp:
        assert tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "config.json").write_text("{}")
        (tmp / "model.safetensors").write_bytes(b"\0" * 8)
        assert not dest.exists()
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "model.safetensors"]
    assert _siblings(dest) == ["checkpoint"]


def test_directory_mode_failure_removes_the_partial_folder(tmp_path):
    dest = tmp_path / "checkpoint"
    with pytest.raises(OSError), atomic_path(dest, directory=True) as tmp:
        (tmp / "config.json").write_text("{}")
        raise OSError("disk full")
    assert not dest.exists()
    assert _siblings(dest) == []


# --- a writer SIGKILLed mid-write (issue 24, part 3) -----------------------------------------

_HOLD_A_WRITE_OPEN = """
import sys, time
from tagparse.atomic import atomic_path
with atomic_path(sys.argv[1], directory=True) as tmp:
    (tmp / "feats.npy").write_bytes(b"\\0" * 4096)  # half a feature cache
    print(tmp, flush=True)
    time.sleep(600)
"""


def _writer_holding(dest):
    """A real process inside `atomic_path(dest)`, and the temporary it is filling."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_A_WRITE_OPEN, str(dest)], stdout=subprocess.PIPE, text=True
    )
    return proc, Path(proc.stdout.readline().strip())


def test_the_next_write_removes_what_a_sigkilled_writer_left(tmp_path):
    dest = tmp_path / "features-abc"
    proc, left = _writer_holding(dest)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert left.is_dir() and (left / "feats.npy").is_file()  # what the kill leaves
    with atomic_path(dest, directory=True) as tmp:
        (tmp / "rows.npy").write_bytes(b"done")
    assert _siblings(dest) == ["features-abc"]
    assert sorted(p.name for p in dest.iterdir()) == ["rows.npy"]


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    dest = tmp_path / "features-abc"
    proc, live = _writer_holding(dest)
    try:
        atomic_write_text(tmp_path / "other.txt", "x")  # another target: not even looked at
        assert remove_dead_temporaries(dest) == []
        assert (live / "feats.npy").is_file()
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert remove_dead_temporaries(dest) == [live]


def test_temporaries_of_another_host_or_an_unknown_name_are_left_alone(tmp_path):
    dest = tmp_path / "step-0000003"
    dead = _dead_pid()
    other_host = tmp_path / f".step-0000003.tmp-node17-{dead}"
    not_ours = tmp_path / ".step-0000003.tmp-notes"
    old_style = tmp_path / f".step-0000003.tmp-{dead}"  # before the host was in the name
    for path in (other_host, not_ours, old_style):
        path.mkdir()
    assert remove_dead_temporaries(dest) == [old_style]
    assert other_host.is_dir() and not_ours.is_dir()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    return proc.pid
