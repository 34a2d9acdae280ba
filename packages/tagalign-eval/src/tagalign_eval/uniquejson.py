"""JSON that refuses a key given twice.

`json.loads` keeps the last of two equal keys without a word, so `{"n01": "cat", "n01": "dog"}`
or a JSONL row `{"image": "a.jpg", "image": "b.jpg"}` would silently change what is computed.
Every user JSON the evaluator reads (class mappings, pair files) goes through `loads_unique`.
"""

from __future__ import annotations

import json
from typing import Any

from tagalign_eval.errors import EvalError


def loads_unique(text: str, where: str) -> Any:
    """`json.loads(text)`, but a duplicate key in any object is an EvalError naming `where`,
    the key and both values. A JSONDecodeError is the caller's to word."""

    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise EvalError(
                    f"{where}: key {key!r} is given twice ({seen[key]!r} and {value!r}); "
                    "give each key once"
                )
            seen[key] = value
        return seen

    return json.loads(text, object_pairs_hook=refuse_duplicates)
