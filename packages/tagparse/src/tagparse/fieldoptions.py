"""Click options built from a settings dataclass, so its fields are the one source of each flag's
name, type, default, range, choices and help (the way vLLM builds its argument parser from its
config dataclasses).

A field becomes a flag when it is declared with `setting(...)`:

    @dataclass(frozen=True)
    class Request:
        batch_size: int = setting(2, help="Images per step.", range=Range(1, 2**20))

    @field_options(Request)
    def command(**kw): Request(**fields_of(Request, kw))

The flag is `--` + the field name with `-` for `_` (or the setting's `flag`); an int or float is
range-checked at parse time from its `range`; `choices` make a `click.Choice`; a bool defaulting
to False is a plain switch, any other bool a `--x/--no-x` pair; a `tuple[str, ...]` is repeatable.
With `unset=True` (settings that override a preset) every default is None and `--help` shows
none, so an unset flag leaves the preset's value alone.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from tagparse.numbers import Range, flag_name

_SETTING = "tagparse.setting"


@dataclasses.dataclass(frozen=True)
class Setting:
    """How a dataclass field is offered as a flag."""

    help: str
    range: Range | None = None
    choices: Sequence[str] | None = None
    flag: str | None = None
    """The flag when it is not the field's name (`templates` -> `--template`, repeatable)."""
    path: bool = False
    """A file or folder (`click.Path`: `~` and shell completion); checked by the API."""
    file: bool = False
    """With `path`: a file, not a folder (refused at parse time: `click.Path(dir_okay=False)`)."""


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    range: Range | None = None,
    choices: Sequence[str] | None = None,
    flag: str | None = None,
    path: bool = False,
    file: bool = False,
) -> Any:
    """A dataclass field that is also a command-line flag (see the module docstring)."""
    meta = {_SETTING: Setting(help, range, choices, flag, path, file)}
    return dataclasses.field(default=default, metadata=meta)


def settings_of(cls: type) -> dict[str, Setting]:
    """Field name -> its `Setting`, for the fields of `cls` declared with `setting(...)`."""
    return {f.name: f.metadata[_SETTING] for f in dataclasses.fields(cls) if _SETTING in f.metadata}


def ranges_of(cls: type) -> dict[str, Range]:
    """Field name -> allowed range, for the numeric settings of `cls` (the API checks the same)."""
    return {name: s.range for name, s in settings_of(cls).items() if s.range is not None}


def fields_of(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed flag values of `cls`'s settings, keyed by field name, ready for `cls(**...)`."""
    return {name: values[name] for name in settings_of(cls)}


def field_options(
    cls: type, names: Sequence[str] | None = None, *, unset: bool = False
) -> Callable[[Callable], Callable]:
    """A decorator adding one click option per setting of `cls` (only `names`, in that order,
    when given); `unset`: every default None (a preset fills it)."""
    settings = settings_of(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    chosen = list(settings) if names is None else list(names)
    options = [_option(fields[n], settings[n], _hint(cls, fields[n]), unset) for n in chosen]

    def decorate(fn: Callable) -> Callable:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _option(
    field: dataclasses.Field, spec: Setting, hint: Any, unset: bool
) -> Callable[[Callable], Callable]:
    flag = spec.flag or flag_name(field.name)
    default = None if unset or field.default is dataclasses.MISSING else field.default
    shown = not unset and default is not None
    extra: dict[str, Any] = {"help": spec.help, "default": default, "show_default": shown}
    kind = _kind(hint)
    if kind is bool:
        if default is False:
            return click.option(flag, field.name, is_flag=True, help=spec.help)
        return click.option(f"{flag}/--no-{flag[2:]}", field.name, **extra)
    if kind is tuple:
        extra["default"] = None if unset else tuple(default or ())
        return click.option(flag, field.name, multiple=True, **extra)
    if spec.choices is not None:
        extra["type"] = click.Choice(list(spec.choices))
    elif spec.range is not None:
        extra["type"] = spec.range.click_type(kind)
    elif spec.path:
        extra["type"] = click.Path(dir_okay=not spec.file)
    return click.option(flag, field.name, **extra)


def _hint(cls: type, field: dataclasses.Field) -> Any:
    """The field's annotation as a type; only this field's (another field may name a type its
    module imports for type checking only)."""
    if not isinstance(field.type, str):
        return field.type
    return eval(field.type, vars(sys.modules[cls.__module__]), {})  # the annotation is source code


def _kind(hint: Any) -> type:
    """`int | None` -> int, `tuple[str, ...]` -> tuple, `str | Path | None` -> str."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin is tuple:
        return tuple
    if args and origin is not tuple:
        return args[0] if args[0] in (bool, int, float) else str
    return hint if hint in (bool, int, float) else str


#: The progress switch every CLI offers, spelled and described once.
progress_option = click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."
)
