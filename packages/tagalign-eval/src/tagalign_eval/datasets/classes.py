"""Class-name lists: one class per line, optional synonyms after the first name, `;`-separated.

`person; person in shirt; person in jeans` scores the class `person` as the best of its names.
`boat: ship; vessel` reports the class as `boat` but prompts only `ship` and `vessel` (a label
that is not a prompt: SCLIP-style renames, or two classes that share a prompt).
A list whose first class is exactly `background` (no synonyms) gets its background from the
protocol (a constant or a threshold) rather than from a text prompt, unless the protocol gives
background prompts (`with_protocol_prompts`).
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
    """The text prompts of each class."""
    source: str
    labels: tuple[str | None, ...] | None = None
    """Per class, a reported name that differs from its first prompt (`label: prompts`)."""
    background_prompted: bool = False
    """The first class `background` is scored from its prompts, not by the protocol."""

    @property
    def names(self) -> list[str]:
        labels = self.labels or (None,) * len(self.synonyms)
        return [label or s[0] for label, s in zip(labels, self.synonyms)]

    def __len__(self) -> int:
        return len(self.synonyms)

    @property
    def background_from_protocol(self) -> bool:
        return (
            bool(self.synonyms)
            and self.synonyms[0] == ("background",)
            and not (self.labels and self.labels[0])
            and not self.background_prompted
        )

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
    labels: list[str | None] = []
    first_seen: dict[str, int] = {}
    for line in lines:
        label, names = _parse_line(line, source)
        if not names:
            continue
        shown = label or names[0]
        if shown in first_seen:
            raise EvalError(
                f"{source}: class {shown!r} is given twice (classes {first_seen[shown]} "
                f"and {len(synonyms)}); give each class once, in the benchmark's label order"
            )
        first_seen[shown] = len(synonyms)
        synonyms.append(names)
        labels.append(label)
    if not synonyms:
        raise EvalError(f"{source}: empty class list; give one class name per line")
    classes = ClassList(tuple(synonyms), source, tuple(labels) if any(labels) else None)
    if not classes.prompted:
        raise EvalError(f"{source}: only 'background'; name at least one class to segment")
    return classes


def _parse_line(line: str, source: str) -> tuple[str | None, tuple[str, ...]]:
    """`a; b` -> (None, (a, b)); `label: a; b` -> (label, (a, b)); a blank line -> no names."""
    label, colon, rest = line.partition(":")
    if not colon:
        return None, tuple(n.strip() for n in line.split(";") if n.strip())
    names = tuple(n.strip() for n in rest.split(";") if n.strip())
    if not label.strip() or not names:
        raise EvalError(
            f"{source}: {line.strip()!r} needs a class name before ':' and prompts after it "
            "(e.g. `boat: ship; vessel`)"
        )
    return label.strip(), names


def with_protocol_prompts(
    classes: ClassList, prompt_map: ClassList | None, background_prompts: tuple[str, ...]
) -> ClassList:
    """The list a protocol scores: classes given with one name that `prompt_map` names get the
    map's prompts, and a protocol background gets `background_prompts` (when there are any).

    A class given with synonyms keeps them: the user's own names win over the protocol's.
    """
    mapped = {} if prompt_map is None else dict(zip(prompt_map.names, prompt_map.synonyms))
    synonyms = []
    for name, prompts in zip(classes.names, classes.synonyms):
        synonyms.append(mapped.get(name, prompts) if prompts == (name,) else prompts)
    prompted_bg = classes.background_from_protocol and bool(background_prompts)
    if prompted_bg:
        synonyms[0] = tuple(background_prompts)
    if tuple(synonyms) == classes.synonyms and not prompted_bg:
        return classes
    labels = [None if syn == (name,) else name for name, syn in zip(classes.names, synonyms)]
    if classes.background_from_protocol and not prompted_bg:
        labels[0] = None
    return ClassList(
        tuple(synonyms),
        classes.source,
        tuple(labels),
        background_prompted=prompted_bg or classes.background_prompted,
    )


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


def builtin_prompt_map(stem: str) -> ClassList:
    """A protocol's prompt map shipped with the package (`datasets/classes/<stem>_prompts.txt`):
    `label: prompt; prompt` lines; the classes it names are scored with its prompts."""
    ref = resources.files("tagalign_eval.datasets") / "classes" / f"{stem}_prompts.txt"
    if not ref.is_file():
        raise EvalError(f"class_prompts {stem!r}: no builtin prompt map {stem}_prompts.txt")
    return parse_class_lines(ref.read_text(encoding="utf-8").splitlines(), f"builtin:{stem}")


def classes_from_option(value: str) -> ClassList:
    """`--classes`: a class file if the value is one or looks like a path (`looks_like_path`:
    such a file must exist), else a comma-separated list (`cat,black cat`)."""
    if not value.strip():
        raise EvalError("--classes is empty; pass a class file or a comma list (cat,black cat)")
    if Path(value).is_file() or looks_like_path(value):
        return load_class_file(value)
    return parse_class_lines(value.split(","), "--classes")
