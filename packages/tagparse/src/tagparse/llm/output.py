"""Turn an LLM's reply into tag lists: find the JSON object in free text, then validate it.

Small or unconstrained models wrap their JSON in prose or code fences, or emit several objects;
anything that is not `{"objects": [short strings], "attributes": [short strings]}` is a recorded
failure that keeps the raw reply for debugging.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_TAG_CHARS = 48
MAX_TAG_WORDS = 5
MAX_TAGS = 32
KEYS = ("objects", "attributes")


class OutputError(ValueError):
    """The reply holds no valid tag object; the message says why."""


@dataclass(frozen=True)
class Tags:
    objects: list[str]
    attributes: list[str]


def extract_json_object(text: str) -> dict:
    """The first JSON object in `text` that has the tag keys (else the first object at all)."""
    decoder = json.JSONDecoder()
    found: list[dict] = []
    start = text.find("{")
    while start != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            if any(k in value for k in KEYS):
                return value
            found.append(value)
        start = text.find("{", end)
    if found:
        return found[0]
    raise OutputError("no JSON object in the reply")


def validate_tags(value: object) -> Tags:
    """Check the shape: both keys, lists of non-empty short strings."""
    if not isinstance(value, dict):
        raise OutputError(f"expected a JSON object, got {type(value).__name__}")
    missing = [k for k in KEYS if k not in value]
    if missing:
        raise OutputError(
            f"missing key(s) {', '.join(missing)}; got {', '.join(map(str, value)) or 'none'}"
        )
    lists = []
    for key in KEYS:
        items = value[key]
        if not isinstance(items, list):
            raise OutputError(f"{key!r} is {type(items).__name__}, not a list")
        if len(items) > MAX_TAGS:
            raise OutputError(f"{key!r} has {len(items)} tags (more than {MAX_TAGS})")
        for item in items:
            if not isinstance(item, str):
                raise OutputError(f"{key!r} holds a {type(item).__name__}, not a string")
            if len(item) > MAX_TAG_CHARS or len(item.split()) > MAX_TAG_WORDS:
                raise OutputError(f"{key!r} holds a tag too long to be a tag: {item[:60]!r}")
        lists.append([s.strip() for s in items if s.strip()])
    return Tags(*lists)


def parse_reply(text: str) -> Tags:
    """Strict JSON first (structured output), then extraction from free text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = extract_json_object(text)
    return validate_tags(value)
