"""docs/tag-label-format.md and tagparse.db.schema describe the same tables, columns, version."""

import re
from pathlib import Path

from tagparse.db.schema import FORMAT_NAME, FORMAT_VERSION, metadata

SPEC = Path(__file__).resolve().parents[2] / "docs" / "tag-label-format.md"


def spec_tables() -> dict[str, list[str]]:
    """`### \\`name\\`` headings followed by a `| column | type | meaning |` table."""
    tables: dict[str, list[str]] = {}
    current = None
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^###\s+`(\w+)`\s*$", line)
        if heading:
            current = heading.group(1)
            tables[current] = []
            continue
        if line.startswith("#"):
            current = None
        cells = (
            [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        )
        if current and cells and cells[0] not in ("column", "") and not set(cells[0]) <= set("-"):
            tables[current].append(cells[0])
    return tables


def test_spec_declares_the_code_format_name_and_version():
    text = SPEC.read_text(encoding="utf-8")
    assert re.search(r"\*\*Format name:\*\*\s*`([^`]+)`", text).group(1) == FORMAT_NAME
    assert int(re.search(r"\*\*Format version:\*\*\s*`(\d+)`", text).group(1)) == FORMAT_VERSION


def test_spec_tables_match_the_schema():
    documented = spec_tables()
    code = {name: [c.name for c in table.columns] for name, table in metadata.tables.items()}
    assert set(documented) == set(code)
    for name, columns in code.items():
        assert documented[name] == columns, (
            f"table {name}: spec {documented[name]} vs code {columns}"
        )


def test_spec_lists_the_meta_keys_the_code_writes():
    meta_row = next(line for line in SPEC.read_text().splitlines() if line.startswith("| key |"))
    for key in ("format_name", "format_version", "vocab_fingerprint", "vocab_parser"):
        assert f"`{key}`" in meta_row
