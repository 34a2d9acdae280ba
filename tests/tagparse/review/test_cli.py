"""The `tagparse review` command layer: lazy textual import, bad flags as one-line errors."""

from __future__ import annotations

import sys

from click.testing import CliRunner
from tagparse.cli import main


def test_missing_review_extra_names_it(tags_db, monkeypatch):
    """textual is installed here; its absence is simulated by blocking the import (sys.modules)."""
    monkeypatch.setitem(sys.modules, "textual", None)
    monkeypatch.delitem(sys.modules, "tagparse.review.app", raising=False)
    out = CliRunner().invoke(main, ["review", "--db", str(tags_db)])
    assert out.exit_code == 2
    assert out.output.strip() == (
        "error: tagparse review needs the TUI extra (textual is missing): "
        "pip install 'tagparse[review]'"
    )


def test_unknown_filter_tag_and_missing_images_are_one_line_errors(tags_db, tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["review", "--db", str(tags_db), "--filter", "zebra"])
    assert out.exit_code == 2 and "no sample has the tag 'zebra'" in out.output
    out = runner.invoke(
        main, ["review", "--db", str(tags_db), "--images", str(tmp_path / "nowhere")]
    )
    assert (
        out.exit_code == 2
        and out.output.startswith("error: --images ")
        and "no such image folder" in out.output
    )
    out = runner.invoke(main, ["review", "--db", str(tags_db), "--parser", "vllm", "--report"])
    assert out.exit_code == 2 and "no parser matches 'vllm'" in out.output
