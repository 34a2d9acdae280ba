"""User-facing errors: each carries a one-line message naming the file/row/key and what to do."""


class TagparseError(Exception):
    """A user mistake or bad input; the CLI prints `error: <message>` and exits with code 2."""


class FormatError(TagparseError):
    """tags.db is not a tag-label file, or has a version this code cannot read."""
