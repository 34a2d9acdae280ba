"""Opening image and mask files so that a bad one is a one-line error naming the file.

An undecodable or truncated file in a data root (a broken download, an interrupted extraction)
would otherwise surface as a PIL traceback from deep inside the evaluation loop, or from a
DataLoader worker, with no hint which of thousands of files it was.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tagalign_eval.errors import EvalError

_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)
"""What PIL raises for a damaged file (truncated data, a broken chunk, a bad header)."""


@contextmanager
def opened(path: Path, what: str, todo: str) -> Iterator[Image.Image]:
    """`Image.open(path)`; a missing or undecodable file inside the block (decode in it: PIL
    reads the pixels lazily) is an `EvalError` "<path>: ... <what> ...; <todo>"."""
    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError:
        raise EvalError(f"{path}: no such {what}; {todo}") from None
    except UnidentifiedImageError:
        raise EvalError(f"{path}: not a readable {what} (unknown format); {todo}") from None
    except _DECODE_ERRORS as exc:
        raise EvalError(f"{path}: not a readable {what} ({exc}); {todo}") from None


def read_rgb(path: Path, todo: str) -> np.ndarray:
    """The image at `path` as H x W x 3 uint8 RGB."""
    with opened(path, "image", todo) as image:
        return np.asarray(image.convert("RGB"))
