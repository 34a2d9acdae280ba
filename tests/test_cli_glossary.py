"""One meaning per flag name across the four console scripts, written down in docs/cli.md
(issue 20, item 4).

The rule this test holds, for every visible flag spelling (`--x`, `--no-x`, `-x`) of every
command of `tagparse`, `tagalign-train` (and its subcommands), `tagalign-eval` (every benchmark
command, plugins' included) and `tagalign-demo`:

1. The flag has exactly one row in docs/cli.md's glossary, and every row names a flag some
   command has: the row is the one written meaning, and it cannot go stale.
2. One kind of value per name, in every command: switch, int, float, choice, path or text
   (`cli_flags.kind_of`). A name that is a named set in one command and a file in another
   (`--templates` before the rename), or a class list in one and a mapping file in another
   (`--classes`), fails here. Choice *sets* may differ (`--format` is each command's own list).
3. The row's kind and tools columns are what the commands have, so the table a user reads is
   the code's.

Meaning beyond the kind (`--model` as the model a command runs versus a second model to compare)
is prose: the single row per name is where a reviewer sees it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from cli_flags import CONSOLE_SCRIPTS, all_flags

GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
_ROW = re.compile(r"^\| `(-[^`]+)` \| ([a-z, ]+) \| ([a-z, -]+) \| (.+) \|$")


def _rows() -> dict[str, tuple[str, str]]:
    text = GLOSSARY.read_text(encoding="utf-8").split("## Glossary", 1)[1]
    rows: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            name, kind, tools, _meaning = match.groups()
            assert name not in rows, f"docs/cli.md has two rows for {name}"
            rows[name] = (kind.strip(), tools.strip())
    return rows


@pytest.fixture(scope="module")
def flags():
    by_name = defaultdict(list)
    for flag in all_flags():
        by_name[flag.name].append(flag)
    return dict(by_name)


def test_every_flag_has_one_row_and_every_row_a_flag(flags):
    rows = _rows()
    assert sorted(set(flags) - set(rows)) == [], "flags missing from docs/cli.md"
    assert sorted(set(rows) - set(flags)) == [], "docs/cli.md rows no command has"


def test_one_kind_of_value_per_flag_name(flags):
    mixed = {
        name: sorted({f"{f.command}: {f.kind}" for f in found})
        for name, found in flags.items()
        if len({f.kind for f in found}) > 1
    }
    assert mixed == {}


def test_the_rows_kind_and_tools_are_the_commands(flags):
    rows = _rows()
    for name, found in flags.items():
        kind, tools = rows[name]
        assert kind == found[0].kind, name
        have = [t for t in CONSOLE_SCRIPTS if any(f.tool == t for f in found)]
        assert tools == ", ".join(have), name


def test_the_three_collisions_the_issue_named_are_gone(flags):
    """classify's file of templates, folder->name map and compared CLIP have names of their own."""
    where = {name: {f.command for f in found} for name, found in flags.items()}
    assert "tagalign-eval classify" not in where["--model"] | where["--classes"]
    assert where["--templates"] == {"tagalign-train"}
    assert {"tagalign-eval classify", "tagalign-eval retrieval"} <= where["--clip-model"]
    assert "tagalign-eval classify" in where["--class-map"] & where["--template-file"]
