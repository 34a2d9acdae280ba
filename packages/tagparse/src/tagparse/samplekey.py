"""The sample-key rule that joins captions, images and labels: one definition for every package.

tagparse stores labels under a key, the review TUI finds the image for a key, and the trainer joins
labels to images by key. If any of them split a file name differently, the join silently drops
samples, so all of them import `split_key` from here.
"""

from __future__ import annotations


def split_key(name: str) -> tuple[str, str]:
    """(key, extension) of a file name, by the webdataset convention.

    The key is the path up to the first dot of the file's base name (`a/b.0001.jpg` -> `a/b`,
    extension `0001.jpg`); the extension is lower-cased.
    """
    directory, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{directory}/{stem}" if directory else stem), ext.lower()
