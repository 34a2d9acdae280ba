"""Whether files can be created at a path: asked before a long run, so an output that cannot be
written is refused in the first second, not after an hour of work.

Shared by the CLIs that write results, pictures and checkpoints (tagalign-eval's outputs,
tagalign-train's run folder); each wraps the reason in its own one-line error naming its flag.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_refusal(target: str | os.PathLike[str]) -> str | None:
    """Why nothing can be created at `target` (a file or folder that may not exist yet): the
    nearest existing path at or above it is a file, or a folder this process cannot write in.
    None when it can be written."""
    existing = Path(target).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"folder {existing} is not writable (read-only or no permission)"
    return None


def not_a_folder(flag: str, target: str | os.PathLike[str]) -> str | None:
    """The one wording, in every CLI, for `flag PATH` that must be a folder but is a file; None
    when it is a folder or does not exist yet (it will be created)."""
    path = Path(target)
    if path.exists() and not path.is_dir():
        return f"{flag} {path} is a file; pass a folder (it is created if missing)"
    return None
