"""Prompt templates (`a photo of a {}.`): checked and read the same way by every command that
takes them (the segmentation protocols' `--template`, `classify`'s `--template` and
`--template-file`). Torch-free."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tagalign_train.config import DEFAULT_TEMPLATES

from tagalign_eval.errors import EvalError

__all__ = ["DEFAULT_TEMPLATES", "check_templates", "read_templates"]


def check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """The templates, each a format string with one `{}` for the class name."""
    if not templates:
        raise EvalError(f"no --template given; pass at least one, e.g. {DEFAULT_TEMPLATES[0]!r}")
    for template in templates:
        try:
            ok = "{}" in template and template.format("cat") != template
        except (KeyError, IndexError, ValueError):
            ok = False
        if not ok:
            raise EvalError(
                f"--template {template!r} is not a format string with one {{}} for the class "
                "name; write a literal brace as {{ or }}"
            )
    return tuple(templates)


def read_templates(path: str | Path, flag: str = "--template-file") -> list[str]:
    """`--template-file FILE`: one template per non-blank line."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError) as exc:
        raise EvalError(f"{flag} {p}: cannot read it as UTF-8 text ({exc})") from None
    templates = [line.strip() for line in lines if line.strip()]
    if not templates:
        raise EvalError(
            f"{flag} {p}: no templates; write one per line, e.g. {DEFAULT_TEMPLATES[0]}"
        )
    return templates
