"""Class-name lists: one class per line, optional synonyms after the first name, `;`-separated.

`person; person in shirt; person in jeans` scores the class `person` as the best of its names.
A list whose first class is exactly `background` (no synonyms) gets its background from the
protocol (a constant or a threshold) rather than from a text prompt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tagalign_eval.errors import EvalError


@dataclass(frozen=True)
class ClassList:
    """Class `i` is reported as `names[i]` and scored with the prompts in `synonyms[i]`."""

    synonyms: tuple[tuple[str, ...], ...]
    source: str

    @property
    def names(self) -> list[str]:
        return [s[0] for s in self.synonyms]

    def __len__(self) -> int:
        return len(self.synonyms)

    @property
    def background_from_protocol(self) -> bool:
        return bool(self.synonyms) and self.synonyms[0] == ("background",)

    @property
    def prompted(self) -> list[tuple[int, str]]:
        """(class index, name) for every text prompt to encode."""
        start = 1 if self.background_from_protocol else 0
        return [(i, n) for i in range(start, len(self)) for n in self.synonyms[i]]


def parse_class_lines(lines: list[str], source: str) -> ClassList:
    """A class per non-blank line (or comma item); refuses an empty list, a list that is only
    the protocol background, and a name given twice (two classes with one prompt would split
    that class's pixels between them at random)."""
    synonyms = []
    first_seen: dict[str, int] = {}
    for line in lines:
        names = tuple(n.strip() for n in line.split(";") if n.strip())
        if not names:
            continue
        if names[0] in first_seen:
            raise EvalError(
                f"{source}: class {names[0]!r} is given twice (classes {first_seen[names[0]]} "
                f"and {len(synonyms)}); give each class once, in the benchmark's label order"
            )
        first_seen[names[0]] = len(synonyms)
        synonyms.append(names)
    if not synonyms:
        raise EvalError(f"{source}: empty class list; give one class name per line")
    classes = ClassList(tuple(synonyms), source)
    if not classes.prompted:
        raise EvalError(f"{source}: only 'background'; name at least one class to segment")
    return classes


def looks_like_path(value: str) -> bool:
    """The rule that tells a class file from a class name: a value with a `/` (or the OS's
    separator) or ending in `.txt` is a file, and must exist."""
    return "/" in value or os.sep in value or value.endswith(".txt")


def load_class_file(path: str | Path) -> ClassList:
    p = Path(path)
    if p.is_dir():
        raise EvalError(f"class file {p} is a folder; pass a text file with one class per line")
    if not p.is_file():
        raise EvalError(f"class file {p} does not exist; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EvalError(
            f"class file {p} is not UTF-8 text; pass a text file with one class per line"
        ) from None
    except OSError as exc:
        raise EvalError(f"class file {p}: cannot read it ({exc.strerror})") from None
    return parse_class_lines(text.splitlines(), str(p))


def builtin_class_list(stem: str) -> ClassList:
    """A class file shipped with the package (`datasets/classes/<stem>.txt`)."""
    ref = resources.files("tagalign_eval.datasets") / "classes" / f"{stem}.txt"
    return parse_class_lines(ref.read_text(encoding="utf-8").splitlines(), f"builtin:{stem}")


def classes_from_option(value: str) -> ClassList:
    """`--classes`: a class file if the value is one or looks like a path (`looks_like_path`:
    such a file must exist), else a comma-separated list (`cat,black cat`)."""
    if not value.strip():
        raise EvalError("--classes is empty; pass a class file or a comma list (cat,black cat)")
    if Path(value).is_file() or looks_like_path(value):
        return load_class_file(value)
    return parse_class_lines(value.split(","), "--classes")
