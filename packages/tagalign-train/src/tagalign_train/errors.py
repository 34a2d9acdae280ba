"""The one error class for user mistakes in tagalign-train; the CLI prints it as `error: <msg>`."""


class TrainError(Exception):
    """Bad input (file, flag, checkpoint) described in one line that says what to do."""
