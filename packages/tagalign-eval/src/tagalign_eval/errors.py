"""User-facing errors of the evaluator: one line naming the file/key and what to do."""


class EvalError(Exception):
    """A user mistake or bad input; the CLI prints `error: <message>` and exits with code 2."""
