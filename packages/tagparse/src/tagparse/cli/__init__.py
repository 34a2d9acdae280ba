"""`tagparse` command line: a thin click layer over the Python API.

Each sub-command lives in its own module, built on `command.Command` (user mistakes raise
`TagparseError`; OS/SQLite faults such as disk full, read-only or locked are turned into one by
`tagparse.faults`; both print one `error:` line with exit code 2, never a traceback); `main`
collects them here.
"""

from __future__ import annotations

import click

from tagparse import __version__
from tagparse.cli.command import Group
from tagparse.cli.export import export, import_tagalign_cmd
from tagparse.cli.merge import merge
from tagparse.cli.prompts import prompts
from tagparse.cli.review import review
from tagparse.cli.run import run
from tagparse.cli.score import score
from tagparse.cli.stats import stats
from tagparse.cli.vocab import vocab


@click.group(cls=Group)
@click.version_option(__version__, prog_name="tagparse")
def main() -> None:
    """Parse image captions into object and attribute tags, stored in a versioned tags.db."""


for _command in (run, vocab, stats, export, import_tagalign_cmd, merge, score, review, prompts):
    main.add_command(_command)
