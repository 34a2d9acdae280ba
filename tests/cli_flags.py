"""Every flag of every command of the project's console scripts, read from the click objects
themselves (the glossary test and docs/cli.md are checked against it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import click
from tagalign_eval.cli import main as eval_main
from tagalign_toy.demo import main as demo_main
from tagalign_train.cli import SUBCOMMANDS
from tagalign_train.cli import main as train_main
from tagparse.cli import main as tagparse_main

CONSOLE_SCRIPTS = {
    "tagparse": tagparse_main,
    "tagalign-train": train_main,
    "tagalign-eval": eval_main,
    "tagalign-demo": demo_main,
}


@dataclass(frozen=True)
class Flag:
    name: str
    tool: str
    command: str
    kind: str
    help: str


def kind_of(option: click.Option) -> str:
    """switch, int, float, choice, path or text: the shape of the value a flag takes."""
    if option.is_flag or option.is_bool_flag:
        return "switch"
    kind = option.type
    if isinstance(kind, click.Choice):
        return "choice"
    if isinstance(kind, click.Path):
        return "path"
    if isinstance(kind, (click.types.IntParamType, click.IntRange)):
        return "int"
    if isinstance(kind, (click.types.FloatParamType, click.FloatRange)):
        return "float"
    return "text"


def _commands(command: click.Command, path: str, parent: click.Context | None) -> Iterator:
    ctx = click.Context(command, info_name=path.split()[-1], parent=parent)
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            yield from _commands(command.get_command(ctx, name), f"{path} {name}", ctx)


def all_commands() -> Iterator[tuple[str, str, click.Command]]:
    """(tool, command path, command) for every command, the trainer's subcommands included."""
    for tool, main in CONSOLE_SCRIPTS.items():
        for path, command in _commands(main, tool, None):
            yield tool, path, command
    for name, command in SUBCOMMANDS.items():
        yield "tagalign-train", f"tagalign-train {name}", command


def all_flags() -> list[Flag]:
    """Every visible spelling (`--x`, `--no-x`, `-x`) of every option of every command."""
    out = []
    for tool, path, command in all_commands():
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for name in [*param.opts, *param.secondary_opts]:
                    out.append(Flag(name, tool, path, kind_of(param), param.help or ""))
    return out
