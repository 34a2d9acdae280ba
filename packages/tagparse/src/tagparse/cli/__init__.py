"""`tagparse` command line: a thin click layer over the Python API.

Each sub-command lives in its own module and registers itself on `main`; user mistakes raise
`TagparseError` and are printed as one line, never as a traceback.
"""

from __future__ import annotations

import sys

import click

from tagparse import __version__
from tagparse.errors import TagparseError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TagparseError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="tagparse")
def main() -> None:
    """Parse image captions into object and attribute tags, stored in a versioned tags.db."""


# Sub-commands register themselves on import.
from tagparse.cli import export as _export  # noqa: F401
from tagparse.cli import merge as _merge  # noqa: F401
from tagparse.cli import prompts as _prompts  # noqa: F401
from tagparse.cli import review as _review  # noqa: F401
from tagparse.cli import run as _run  # noqa: F401
from tagparse.cli import score as _score  # noqa: F401
from tagparse.cli import stats as _stats  # noqa: F401
from tagparse.cli import vocab as _vocab  # noqa: F401
