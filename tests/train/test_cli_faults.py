"""Issue 12's battery for tagalign-train: every bad input and fault ends in one `error:` line.

Each case runs the installed `tagalign-train` (or `tagalign-eval`, for the checkpoints it
reads) and asserts the shared promise (`cli_checks.assert_user_error`): exit code 2, no
traceback, one `error:` line naming the flag or file, and nothing the user already had lost.
Cases whose outcome does not depend on the process run the console script's click command
in-process (`cli_checks.in_process`: a subprocess per case paid a torch + open_clip import, 10-15
s here); real subprocesses remain for the training run the cases share (`trained`), the first
range check, the huge `--batch-size`, a resume past a damaged checkpoint (its warning line), a
planted pickle, `convert-checkpoint --trust`, an eval of a damaged run, and every fault that
needs a process: RLIMIT_FSIZE, the mount namespaces.

The faults are real: disk full is a real EFBIG (RLIMIT_FSIZE in the child) and a real ENOSPC
(a 1 MiB tmpfs), read-only is a real read-only bind mount (a private mount namespace,
`unshare -m`); the damaged checkpoints are real files cut short, as a copy that ran out of space
leaves them.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import torch
from cli_checks import (
    assert_runner_error,
    assert_user_error,
    cli_path,
    db_snapshot,
    in_process,
    invoke_cli,
    run_cli,
)
from PIL import Image
from tagalign_train.checkpoint import CONFIG, TRAIN_STATE, WEIGHTS, load_checkpoint, step_dirs
from tagalign_train.model import build_model
from train_helpers import TINY

HAS_UNSHARE = (
    shutil.which("unshare") is not None
    and subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode == 0
)
needs_mounts = pytest.mark.skipif(not HAS_UNSHARE, reason="needs `unshare -m` (mount namespace)")


def train_args(world, weights, out, *extra) -> list[str]:
    """A 2-step tiny run of the toy preset; `extra` overrides or adds flags."""
    shards, _, db = world
    args = ["tagalign-train", "--labels", db, "--out", out, "--preset", "toy"]
    args += ["--pretrained", weights, "--workers", "0", "--batch-size", "4", "--image-size", "32"]
    args += ["--steps", "2", "--no-progress", "--text-cache", str(Path(out).parent / "tc")]
    for shard in shards:
        args += ["--data", shard]
    return args + [str(a) for a in extra]


def in_namespace(mount: str, directory: Path, argv: list[str], then: str = "") -> list[str]:
    """`argv` run in a private mount namespace where `directory` is mounted as `mount` says
    ("ro": a read-only bind of itself; "1m": an empty 1 MiB tmpfs); `then` runs after it, in the
    namespace (the tmpfs is gone once it ends), and the command's exit code is kept."""
    how = (
        'mount --bind -o ro "$0" "$0"'
        if mount == "ro"
        else f'mount -t tmpfs -o size={mount} tmpfs "$0"'
    )
    script = f'{how} || exit 99; "$@"; rc=$?; {then or "true"}; exit $rc'
    return ["unshare", "-m", "sh", "-c", script, str(directory), cli_path(argv[0]), *argv[1:]]


@pytest.fixture(scope="module")
def trained(world, tiny_weights, tmp_path_factory) -> Path:
    """A finished run with checkpoints step-1 and step-2 (copy it before damaging it)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    proc = run_cli(train_args(world, tiny_weights, out, "--save-every", "1", "--keep-last", "0"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [s for s, _ in step_dirs(out)] == [1, 2]
    return out


def copy_run(trained: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


def cut_in_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


# --- flags: click range checks (no torch is imported; nothing is created) --------------------

OUT_OF_RANGE = [
    ("--lr", "-1"),
    ("--lr", "0"),
    ("--save-every", "0"),
    ("--steps", "0"),
    ("--batch-size", "0"),
    ("--image-size", "0"),
    ("--log-every", "0"),
    ("--accum", "0"),
    ("--workers", "-1"),
    ("--seed", "-1"),
    ("--keep-last", "-1"),
    ("--tag-weight", "-1"),
    ("--itc-weight", "-0.5"),
    ("--lr", "nan"),
]


@pytest.mark.parametrize("flag, value", OUT_OF_RANGE)
def test_numeric_flag_out_of_range_is_one_line_and_creates_nothing(
    world, tiny_weights, tmp_path, flag, value
):
    """In-process (click's range checks, before torch loads); the first case also runs the real
    console script in a subprocess."""
    out = tmp_path / "run"
    args = train_args(world, tiny_weights, out, flag, value)
    assert_runner_error(invoke_cli(args), flag, "range")
    assert not out.exists()
    if (flag, value) == OUT_OF_RANGE[0]:
        assert_user_error(run_cli(args, timeout=60), flag, "range")
        assert not out.exists()


def test_both_loss_weights_zero_is_refused(world, tiny_weights, tmp_path):
    args = train_args(world, tiny_weights, tmp_path / "run", "--tag-weight", "0")
    proc = in_process([*args, "--itc-weight", "0"])
    assert_user_error(proc, "--tag-weight", "--itc-weight", "nothing would train")
    assert not (tmp_path / "run").exists()


# --- inputs: files and folders a user can get wrong -----------------------------------------


def test_pretrained_that_is_not_weights(world, tmp_path):
    csv = tmp_path / "some.csv"
    csv.write_text("filename,caption\na.jpg,a cat\n")
    proc = in_process(train_args(world, str(csv), tmp_path / "run"))
    assert_user_error(proc, "some.csv", "could not load", "weights")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("size, message", [("8", "smaller than one 16-pixel patch")])
def test_image_size_below_one_patch_creates_no_run_folder(
    world, tiny_weights, tmp_path, size, message
):
    proc = in_process(train_args(world, tiny_weights, tmp_path / "run", "--image-size", size))
    assert_user_error(proc, "--image-size 8", message)
    assert not (tmp_path / "run").exists()


def test_labels_that_are_not_a_tags_db(world, tiny_weights, tmp_path):
    fake = tmp_path / "tags.db"
    fake.write_text("key,caption\n")
    args = train_args(world, tiny_weights, tmp_path / "run")
    args[args.index("--labels") + 1] = str(fake)
    assert_user_error(in_process(args), str(fake))
    assert fake.read_text() == "key,caption\n" and not (tmp_path / "run").exists()


def test_labels_without_a_vocabulary(world, tiny_weights, tmp_path):
    from tagparse.db import TagsDB

    db = TagsDB.open(tmp_path / "novocab.db", create=True)
    db.add_samples([("k", "a cat")])
    db.close()
    before = db_snapshot(tmp_path / "novocab.db")
    args = train_args(world, tiny_weights, tmp_path / "run")
    args[args.index("--labels") + 1] = str(tmp_path / "novocab.db")
    assert_user_error(in_process(args), "novocab.db", "tagparse vocab")
    assert db_snapshot(tmp_path / "novocab.db") == before
    assert not (tmp_path / "run").exists()


@needs_mounts
def test_labels_in_a_read_only_folder_train(world, tiny_weights, tmp_path):
    """Read-only use works read-only (issue 12 case 5): a tags.db on read-only media trains."""
    ro = tmp_path / "media"
    ro.mkdir()
    shutil.copy(world[2], ro / "tags.db")
    before = db_snapshot(ro / "tags.db")
    args = train_args(world, tiny_weights, tmp_path / "run", "--steps", "1")
    args[args.index("--labels") + 1] = str(ro / "tags.db")
    proc = subprocess.run(in_namespace("ro", ro, args), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and db_snapshot(ro / "tags.db") == before


def test_out_that_is_a_file(world, tiny_weights, tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("keep me\n")
    assert_user_error(
        in_process(train_args(world, tiny_weights, out)), "--out", "is a file; pass a folder"
    )
    assert out.read_text() == "keep me\n"


@needs_mounts
def test_out_in_a_read_only_folder(world, tiny_weights, tmp_path):
    ro = tmp_path / "media"
    ro.mkdir()
    argv = in_namespace("ro", ro, train_args(world, tiny_weights, ro / "run"))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert_user_error(proc, f"--out {ro / 'run'}", "read-only")
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("flag", ["--text-cache", "--cache-features"])
def test_cache_folder_that_is_a_file(world, tiny_weights, tmp_path, flag):
    cache = tmp_path / "cache.bin"
    cache.write_bytes(b"keep me")
    proc = in_process(train_args(world, tiny_weights, tmp_path / "run", flag, cache))
    assert_user_error(proc, f"{flag} {cache}", "is a file; pass a folder")
    assert cache.read_bytes() == b"keep me" and not (tmp_path / "run").exists()


def test_data_pattern_matching_nothing(world, tiny_weights, tmp_path):
    args = train_args(world, tiny_weights, tmp_path / "run")
    shards = [i + 1 for i, a in enumerate(args) if a == "--data"]
    args = [a for i, a in enumerate(args) if i not in shards and i + 1 not in shards]
    proc = in_process([*args, "--data", str(tmp_path / "shards" / "{00000..00003}.tar")])
    assert_user_error(proc, "00000.tar")
    assert not (tmp_path / "run").exists()


def test_batch_larger_than_the_data(world, tiny_weights, tmp_path):
    proc = in_process(train_args(world, tiny_weights, tmp_path / "run", "--batch-size", "64"))
    assert_user_error(proc, "--batch-size 64", "48 training samples", "--batch-size 48")
    assert not (tmp_path / "run").exists()


# --- resume ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value", [("--lr", "0.5"), ("--image-size", "48")])
def test_resume_with_other_settings_is_refused(world, tiny_weights, trained, tmp_path, flag, value):
    run = copy_run(trained, tmp_path)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    args = train_args(world, tiny_weights, run, "--resume", "--steps", "3", flag, value)
    assert_user_error(in_process(args), "step-0000002", "differs", "new --out")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


@pytest.mark.parametrize("damaged", [TRAIN_STATE, WEIGHTS])
def test_resume_falls_back_to_the_newest_intact_checkpoint(
    world, tiny_weights, trained, tmp_path, damaged
):
    """The train_state.pt case as a real subprocess (its stderr is the one warning line and
    nothing else), the other in-process."""
    run = copy_run(trained, tmp_path)
    cut_in_half(run / "checkpoints" / "step-0000002" / damaged)
    args = train_args(world, tiny_weights, run, "--resume", "--steps", "3")
    proc = (run_cli if damaged == TRAIN_STATE else in_process)(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if "damaged checkpoint" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: "), proc.stderr
    assert damaged in warnings[0] and "using step-0000001" in warnings[0]
    assert "resuming" in proc.stdout and "step-0000001 at step 1" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert [s for s, _ in step_dirs(run)][-1] == 3


def test_resume_with_every_checkpoint_damaged(world, tiny_weights, trained, tmp_path):
    run = copy_run(trained, tmp_path)
    for _, ckpt in step_dirs(run):
        cut_in_half(ckpt / TRAIN_STATE)
    proc = in_process(train_args(world, tiny_weights, run, "--resume", "--steps", "3"))
    assert_user_error(proc, str(run), "no intact checkpoint", TRAIN_STATE, "restore")


def test_resume_removes_a_half_written_checkpoint(world, tiny_weights, trained, tmp_path):
    """The folder a SIGKILL during a checkpoint write leaves (planted: a kill cannot be timed
    into the few milliseconds of a tiny write), with the older trainer's name too."""
    run = copy_run(trained, tmp_path)
    for name in (".step-0000003.tmp-4242", ".tmp-step-0000003"):
        (run / "checkpoints" / name).mkdir()
        (run / "checkpoints" / name / WEIGHTS).write_bytes(b"half")
    proc = in_process(train_args(world, tiny_weights, run, "--resume", "--steps", "3"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step-0000001", "step-0000002", "step-0000003"]


# --- disk full at a checkpoint ---------------------------------------------------------------


def _file_size_limit(limit: int):
    def preexec() -> None:  # Python ignores SIGXFSZ, so an oversized write is an EFBIG OSError
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_checkpoint_on_a_file_size_limit(world, tiny_weights, trained, tmp_path):
    """A real EFBIG: model.safetensors (~600 KB) is larger than RLIMIT_FSIZE allows."""
    run = copy_run(trained, tmp_path)
    before = {p: p.read_bytes() for p in (run / "checkpoints").rglob("*") if p.is_file()}
    args = train_args(world, tiny_weights, run, "--resume", "--steps", "3")
    proc = run_cli(args, preexec_fn=_file_size_limit(200_000))
    assert_user_error(proc, str(run / "checkpoints"), WEIGHTS, "file too large")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-0000001",
        "step-0000002",
    ]
    assert {p: p.read_bytes() for p in (run / "checkpoints").rglob("*") if p.is_file()} == before


@needs_mounts
def test_checkpoint_on_a_full_disk(world, tiny_weights, tmp_path):
    """A real ENOSPC: the run directory is a 1 MiB tmpfs, the first checkpoint needs ~1.8 MB."""
    disk = tmp_path / "disk"
    disk.mkdir()
    argv = train_args(world, tiny_weights, disk / "run", "--steps", "1")
    argv[argv.index("--text-cache") + 1] = str(tmp_path / "tc")
    listing = 'echo "LEFT:$(ls -A "$0/run/checkpoints" | tr "\\n" " ")"'
    proc = subprocess.run(
        in_namespace("1m", disk, argv, then=listing), capture_output=True, text=True, check=False
    )
    assert_user_error(proc, str(disk / "run" / "checkpoints"), "disk full")
    assert "LEFT: \n" in proc.stdout or proc.stdout.rstrip().endswith("LEFT:"), proc.stdout


# --- eval reads the checkpoints --------------------------------------------------------------


def _predict(tmp_path: Path, checkpoint: Path, run=in_process) -> subprocess.CompletedProcess:
    """`tagalign-eval predict` of one image with `checkpoint`, in-process unless `run` is
    `run_cli`."""
    image = tmp_path / "photo.png"
    Image.new("RGB", (48, 48), (200, 40, 40)).save(image)
    return run(
        [
            "tagalign-eval",
            "predict",
            image,
            "--classes",
            "circle,square",
            "--checkpoint",
            checkpoint,
            "--out",
            tmp_path / "pred",
            "--device",
            "cpu",
        ]
    )


def test_eval_of_a_run_skips_a_damaged_latest_checkpoint(trained, tmp_path):
    """A real subprocess: stderr holds the one warning and nothing else a process prints."""
    run = copy_run(trained, tmp_path)
    cut_in_half(run / "checkpoints" / "step-0000002" / WEIGHTS)
    proc = _predict(tmp_path, run, run=run_cli)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "damaged" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: "), proc.stderr
    assert WEIGHTS in lines[0] and "using step-0000001" in lines[0]


def test_eval_of_a_named_damaged_checkpoint(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    named = run / "checkpoints" / "step-0000002"
    cut_in_half(named / WEIGHTS)
    assert_user_error(_predict(tmp_path, named), str(named), WEIGHTS, "truncated")


def test_eval_refuses_a_legacy_random_tower_checkpoint(tmp_path):
    """Issue 12 case 2: a v2 checkpoint on random towers recorded no seed (every load drew new
    towers); eval refuses it instead of scoring a different model each time."""
    model = build_model(TINY, "none", image_size=32)
    ckpt = tmp_path / "step-0000001"
    ckpt.mkdir()
    from safetensors.torch import save_file
    from tagalign_train.model_config import CheckpointConfig

    config = json.loads(CheckpointConfig(model=model.config).to_json())
    del config["model"]["init_seed"]
    (ckpt / CONFIG).write_text(json.dumps({**config, "format_version": 2}))
    save_file(model.trainable_state_dict(), str(ckpt / WEIGHTS))
    assert_user_error(_predict(tmp_path, ckpt), str(ckpt), "did not record their seed", "retrain")


def test_random_tower_run_loads_to_the_same_model_every_time(world, tmp_path):
    """Issue 12 case 2 end to end: a `--pretrained none` run, loaded twice, scores the same."""
    out = tmp_path / "run"
    proc = in_process(train_args(world, "none", out, "--steps", "1", "--seed", "3"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    images = torch.rand(2, 3, 32, 32)
    first = load_checkpoint(out)
    assert first.config.model.init_seed == 3
    torch.manual_seed(123)
    second = load_checkpoint(out)
    a, b = first.model.dense_embeddings(images), second.model.dense_embeddings(images)
    assert torch.equal(a, b)


def test_damaged_tags_db_is_named(world, tiny_weights, tmp_path):
    """A tags.db whose pages were cut (a copy that ran out of space) is named, not a traceback."""
    damaged = tmp_path / "tags.db"
    shutil.copy(world[2], damaged)
    con = sqlite3.connect(damaged)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    cut_in_half(damaged)
    args = train_args(world, tiny_weights, tmp_path / "run")
    args[args.index("--labels") + 1] = str(damaged)
    assert_user_error(in_process(args), "tags.db")
    assert not (tmp_path / "run").exists()


def test_damaged_label_row_is_named(world, tiny_weights, tmp_path):
    """A label blob that is not whole int32 indices (a hand edit): one line naming the table and
    the sample, and the fix (issue 24, part 3)."""
    damaged = tmp_path / "tags.db"
    shutil.copy(world[2], damaged)
    con = sqlite3.connect(damaged)
    with con:
        key = con.execute(
            "SELECT key FROM samples JOIN labels ON labels.sample_id = samples.id LIMIT 1"
        ).fetchone()[0]
        con.execute(
            "UPDATE labels SET objects = X'01000000FF' WHERE sample_id = "
            "(SELECT id FROM samples WHERE key = ?)",
            (key,),
        )
    con.close()
    args = train_args(world, tiny_weights, tmp_path / "run")
    args[args.index("--labels") + 1] = str(damaged)
    proc = in_process(args)
    assert_user_error(proc, "table labels", repr(key), "5 bytes", "tagparse vocab --db")
    assert not (tmp_path / "run").exists()


# --- A shared checkpoint must not run code (issue 24, part 1) ---------------------------------


class _Planted:
    """What an attacker plants in a shared train_state.pt: unpickling it creates a file (the
    same hook runs any command; creating a marker shows whether it ran)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(ckpt: Path, marker: Path, *, manifest: bool) -> None:
    """Add a `_Planted` to ckpt's training state; keep the manifest consistent as the sharer
    would (or delete it: an old-style checkpoint)."""
    from tagalign_train.integrity import manifest_text

    state = torch.load(ckpt / TRAIN_STATE, weights_only=True)
    state["history"].append({"note": _Planted(marker)})
    torch.save(state, ckpt / TRAIN_STATE)
    if manifest:
        names = [n for n in (WEIGHTS, CONFIG, TRAIN_STATE)]
        (ckpt / "manifest.json").write_text(
            manifest_text({n: (ckpt / n).read_bytes() for n in names})
        )
    else:
        (ckpt / "manifest.json").unlink()


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest-updated", "manifest-deleted"])
def test_resume_refuses_a_planted_pickle_and_runs_nothing(
    world, tiny_weights, trained, tmp_path, manifest
):
    run = copy_run(trained, tmp_path)
    marker = tmp_path / "pwned"
    for _, ckpt in step_dirs(run):
        _plant(ckpt, marker, manifest=manifest)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    args = train_args(world, tiny_weights, run, "--resume", "--steps", "3")
    proc = (run_cli if manifest else in_process)(args)  # the first case a real subprocess
    assert_user_error(proc, TRAIN_STATE, "not plain data", "convert-checkpoint --trust")
    assert not marker.exists(), "the planted object ran"
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def _make_old_style(ckpt: Path) -> None:
    """A checkpoint as tagalign-train wrote them before plain-data states: numpy's and Python's
    RNG states as the tuples their get_state returns (numpy's holds an ndarray)."""
    import random

    import numpy as np
    from tagalign_train.integrity import manifest_text

    state = torch.load(ckpt / TRAIN_STATE, weights_only=True)
    np.random.seed(7)
    random.seed(7)
    state["rng"]["numpy"] = np.random.get_state()
    state["rng"]["python"] = random.getstate()
    torch.save(state, ckpt / TRAIN_STATE)
    names = (WEIGHTS, CONFIG, TRAIN_STATE)
    (ckpt / "manifest.json").write_text(manifest_text({n: (ckpt / n).read_bytes() for n in names}))


def test_an_old_checkpoint_converts_with_trust_and_then_resumes(
    world, tiny_weights, trained, tmp_path
):
    import random

    import numpy as np
    from tagalign_train.checkpoint import read_train_state, set_rng_state

    run = copy_run(trained, tmp_path)
    newest = step_dirs(run)[-1][1]
    for _, ckpt in step_dirs(run):
        _make_old_style(ckpt)
    refused = in_process(train_args(world, tiny_weights, run, "--resume", "--steps", "3"))
    assert_user_error(refused, "not plain data", f"convert-checkpoint --trust {newest}")

    untrusted = in_process(["tagalign-train", "convert-checkpoint", run])
    assert_user_error(untrusted, str(run), "--trust")
    assert "rng" in torch.load(newest / TRAIN_STATE, weights_only=False)  # still the old file

    done = run_cli(["tagalign-train", "convert-checkpoint", "--trust", run])  # a real process
    assert done.returncode == 0, done.stderr
    assert str(newest) in done.stdout
    state = read_train_state(newest)  # weights_only=True now reads it
    np.random.seed(7)
    random.seed(7)
    expected_np, expected_py = np.random.get_state(), random.getstate()
    np.random.seed(0)
    random.seed(0)
    set_rng_state(state["rng"])
    restored_np = np.random.get_state()
    assert restored_np[0] == expected_np[0] and (restored_np[1] == expected_np[1]).all()
    assert restored_np[2:] == expected_np[2:]
    assert random.getstate() == expected_py

    resumed = in_process(train_args(world, tiny_weights, run, "--resume", "--steps", "3"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{newest.name} at step 2" in resumed.stdout


def test_no_package_unpickles_user_files_except_the_trusted_converter():
    """`weights_only=False`, `allow_pickle=True` and pickle.load(s) appear nowhere in the
    packages (the old-checkpoint converter admits numpy's array globals only)."""
    import re

    root = Path(__file__).resolve().parents[2] / "packages"
    pattern = re.compile(r"weights_only\s*=\s*False|allow_pickle\s*=\s*True|pickle\.loads?\(")
    found = []
    for path in root.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith(("#", '"', "`")):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert found == [], found


def test_convert_checkpoint_refuses_a_planted_pickle_even_with_trust(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    marker = tmp_path / "pwned"
    for _, ckpt in step_dirs(run):
        _plant(ckpt, marker, manifest=True)
    proc = in_process(["tagalign-train", "convert-checkpoint", "--trust", run])
    assert_user_error(proc, TRAIN_STATE, "not converted")
    assert not marker.exists(), "the planted object ran"


# --- issue 24 part 3: new surfaces, huge values, symbolic links in a run folder ----------------

HUGE = str(2**63)
PARSE_TIME = [
    ("--batch-size", HUGE),
    ("--steps", HUGE),
    ("--image-size", "100000"),
    ("--workers", HUGE),
    ("--accum", HUGE),
    ("--keep-last", HUGE),
    ("--save-every", HUGE),
    ("--log-every", HUGE),
    ("--seed", str(2**32)),
    ("--lr", "inf"),
    ("--tag-weight", "nan"),
    ("--itc-weight", "inf"),
    ("--dense", "SCLIP"),
    ("--dense", "sclp"),
    ("--projector", "mlp"),
    ("--tag-loss", "focal"),
]


@pytest.mark.parametrize("flag, value", PARSE_TIME, ids=[f"{f} {v}" for f, v in PARSE_TIME])
def test_flag_values_refused_in_process(tmp_path, flag, value):
    """Pure parse-time validation, in-process (cheap); `--batch-size 2**63` was a traceback."""
    from cli_checks import assert_runner_error
    from click.testing import CliRunner
    from tagalign_train.cli import main

    args = ["--labels", "x.db", "--data", "x.tar", "--out", str(tmp_path / "run"), flag, value]
    result = CliRunner().invoke(main, args, prog_name="tagalign-train")
    assert_runner_error(result, flag, value)
    assert not (tmp_path / "run").exists()


def test_huge_batch_size_through_the_real_entry_point(world, tiny_weights, tmp_path):
    proc = run_cli(train_args(world, tiny_weights, tmp_path / "run", "--batch-size", HUGE))
    assert_user_error(proc, "--batch-size", HUGE, "range")
    assert not (tmp_path / "run").exists()


def _link_step(run: Path, step: str, target: Path | str) -> Path:
    link = run / "checkpoints" / step
    if link.exists() or link.is_symlink():
        shutil.rmtree(link)
    link.symlink_to(target)
    return link


@pytest.mark.parametrize("kind", ["outside", "dangling", "inside"])
def test_resume_refuses_a_step_folder_that_is_a_symlink(
    world, tiny_weights, trained, tmp_path, kind
):
    """A `checkpoints/step-N` link (to a folder outside the run, to nothing, or to a sibling)
    is refused in one line before anything runs; nothing is deleted through it."""
    run = copy_run(trained, tmp_path)
    outside = tmp_path / "elsewhere"
    shutil.copytree(run / "checkpoints" / "step-0000002", outside)
    target = {
        "outside": outside,
        "dangling": tmp_path / "gone",
        "inside": run / "checkpoints" / "step-0000001",
    }[kind]
    link = _link_step(run, "step-0000002", target)
    before = sorted(p.name for p in outside.iterdir())
    args = train_args(world, tiny_weights, run, "--resume", "--steps", "3", "--keep-last", "1")
    assert_user_error(in_process(args), str(link), "symbolic link", "cp -rL")
    assert link.is_symlink() and sorted(p.name for p in outside.iterdir()) == before
    assert (run / "checkpoints" / "step-0000001" / WEIGHTS).is_file()


def test_keep_last_never_deletes_through_a_link(trained, tmp_path):
    """The Python API: a checkpoint write into a run with a linked step folder is refused
    before `keep_last` would prune, and the folder the link points at is intact."""
    from dataclasses import replace

    from tagalign_train.checkpoint import read_config, read_weights, write_checkpoint
    from tagalign_train.errors import TrainError

    run = copy_run(trained, tmp_path)
    outside = tmp_path / "precious"
    shutil.copytree(run / "checkpoints" / "step-0000001", outside)
    _link_step(run, "step-0000001", outside)
    newest = run / "checkpoints" / "step-0000002"
    config, weights = read_config(newest), read_weights(newest)
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    newest_before = {p.name: p.read_bytes() for p in newest.iterdir()}
    with pytest.raises(TrainError, match="symbolic link"):
        write_checkpoint(run, replace(config, step=3), weights, None, keep_last=1)
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before
    assert {p.name: p.read_bytes() for p in newest.iterdir()} == newest_before
    assert not (run / "checkpoints" / "step-0000003").exists()  # refused before writing


def test_eval_refuses_a_checkpoint_file_linked_out_of_its_folder(trained, tmp_path):
    """Issue 24 part 1's audit: a checkpoint's weights linked to a file outside its folder is
    refused when named, skipped with a warning when the run is given."""
    run = copy_run(trained, tmp_path)
    named = run / "checkpoints" / "step-0000002"
    outside = tmp_path / "outside.safetensors"
    shutil.copy(named / WEIGHTS, outside)
    (named / WEIGHTS).unlink()
    (named / WEIGHTS).symlink_to(outside)
    assert_user_error(_predict(tmp_path, named), str(named), "outside the checkpoint folder")
    proc = _predict(tmp_path, run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warned = [line for line in proc.stderr.splitlines() if "outside the checkpoint" in line]
    assert len(warned) == 1 and "using step-0000001" in warned[0], proc.stderr


def test_local_dir_with_a_pickled_bin_is_one_line(world, tmp_path):
    """A `local-dir:` CLIP folder whose weights are a pickle with a planted object: refused by
    torch.load(weights_only=True), now as one line saying to convert to safetensors; the
    planted object never runs."""
    from tagalign_toy.toy_clip import LOCAL_CONFIG_FILE, SHIPPED_DIR

    shipped = next(p for p in SHIPPED_DIR.iterdir() if (p / LOCAL_CONFIG_FILE).is_file())
    local = tmp_path / "clip"
    local.mkdir()
    shutil.copy(shipped / LOCAL_CONFIG_FILE, local)
    marker = tmp_path / "pwned"
    torch.save({"planted": _Planted(marker)}, local / "open_clip_pytorch_model.bin")
    args = train_args(world, "none", tmp_path / "run", "--model", f"local-dir:{local}")
    proc = in_process(args)
    assert_user_error(proc, str(local), "pickle", "convert it to safetensors")
    assert not marker.exists() and not (tmp_path / "run").exists()
