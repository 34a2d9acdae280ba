"""Class-name lists: one class per line, optional synonyms after the first name, `;`-separated.

`person; person in shirt; person in jeans` scores the class `person` as the best of its names.
A list whose first class is exactly `background` (no synonyms) gets its background from the
protocol (a constant or a threshold) rather than from a text prompt.
"""

from __future__ import annotations

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
    synonyms = []
    for line in lines:
        names = tuple(n.strip() for n in line.split(";") if n.strip())
        if names:
            synonyms.append(names)
    if not synonyms:
        raise EvalError(f"{source}: empty class list; give one class name per line")
    return ClassList(tuple(synonyms), source)


def load_class_file(path: str | Path) -> ClassList:
    p = Path(path)
    if not p.is_file():
        raise EvalError(f"class file {p} does not exist")
    return parse_class_lines(p.read_text(encoding="utf-8").splitlines(), str(p))


def builtin_class_list(stem: str) -> ClassList:
    """A class file shipped with the package (`datasets/classes/<stem>.txt`)."""
    ref = resources.files("tagalign_eval.datasets") / "classes" / f"{stem}.txt"
    return parse_class_lines(ref.read_text(encoding="utf-8").splitlines(), f"builtin:{stem}")


def classes_from_option(value: str) -> ClassList:
    """`--classes`: a file path if one exists, else a comma-separated list (`cat,black cat`)."""
    if Path(value).is_file():
        return load_class_file(value)
    return parse_class_lines(value.split(","), "--classes")
