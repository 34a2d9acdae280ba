"""A tiny deterministic parser for pipeline tests: a real `Backend`, not a mock.

Words on a small colour/size list are attributes; other words of 3+ letters that are not stop
words are objects. A caption containing the word `FAIL` yields a failed parse (how an LLM
backend reports a bad answer) unless WORDSPLIT_FORGIVE=1 is set (the "server" recovered), so
failure handling and --retry-failed can be exercised deterministically.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence

import pytest
from tagparse.backends import register_backend, unregister_backend
from tagparse.parsing import ParseResult, ParserSpec

BACKEND = "wordsplit"
COLOURS = {"red", "blue", "green", "brown", "black", "white", "yellow", "small", "large", "old"}
STOP = {"the", "and", "with", "on", "in", "of", "a", "an", "at", "for", "near", "next"}


class WordSplitBackend:
    def __init__(self, delay: float = 0.0, version: str = "1"):
        self.delay = delay
        self.spec = ParserSpec(
            backend="wordsplit", normalizer_version="none", model=f"wordsplit-{version}"
        )

    def parse_batch(self, captions: Sequence[str]) -> list[ParseResult]:
        if self.delay:
            time.sleep(self.delay)
        out = []
        for caption in captions:
            if "FAIL" in caption.split() and not os.environ.get("WORDSPLIT_FORGIVE"):
                out.append(ParseResult.failure("caption asked to fail", raw_output=caption))
                continue
            words = [w for w in re.findall(r"[a-z]+", caption.lower()) if w not in STOP]
            attrs = sorted({w for w in words if w in COLOURS})
            objs = sorted({w for w in words if w not in COLOURS and len(w) >= 3})
            out.append(ParseResult(objs, attrs, raw_output=f"pid={os.getpid()}"))
        return out


def create(delay: float = 0.0, version: str = "1", **_ignored) -> WordSplitBackend:
    return WordSplitBackend(delay=float(delay), version=str(version))


def create_needing_missing_package(**_ignored):
    """A backend whose dependency is genuinely not installed (for the pip-extra hint)."""
    import tagparse_test_dependency_that_is_not_installed  # noqa: F401


@pytest.fixture
def wordsplit():
    """Register the backend as `--backend wordsplit` for one test."""
    register_backend(BACKEND, create)
    yield BACKEND
    unregister_backend(BACKEND)
