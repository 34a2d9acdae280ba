"""What a killed checkpoint write leaves is found by name: the temporaries of atomic_path as it
names them today (`.step-N.tmp-HOST-PID`) and as it did before (`.step-N.tmp-PID`), and the older
trainer's `.tmp-step-N`; nothing else in checkpoints/ is touched."""

from __future__ import annotations

import pytest
from tagalign_train.checkpoint import remove_stale_temporaries
from tagparse.atomic import atomic_path


def test_every_generation_of_half_written_checkpoint_is_found_and_nothing_else(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "step-0000002").mkdir()
    (checkpoints / ".notes").write_text("the user's")
    older = [checkpoints / ".step-0000003.tmp-4242", checkpoints / ".tmp-step-0000003"]
    for path in older:
        path.mkdir()
    # a write in progress stands for one a SIGKILL stopped: its temporary has today's name
    with (
        pytest.raises(FileNotFoundError),
        atomic_path(checkpoints / "step-0000004", directory=True) as current,
    ):
        removed = remove_stale_temporaries(tmp_path)
    assert removed == sorted([current, *older])
    assert sorted(p.name for p in checkpoints.iterdir()) == [".notes", "step-0000002"]
