"""Reading tags out of LLM replies: strict JSON, JSON buried in free text, and what is rejected."""

from __future__ import annotations

import pytest
from tagparse.llm.output import OutputError, extract_json_object, parse_reply


@pytest.mark.parametrize(
    "reply",
    [
        '{"objects": ["kitten", "grass"], "attributes": ["small"]}',
        (
            "Sure! Here are the tags:\n```json\n"
            '{"objects": ["kitten", "grass"], "attributes": ["small"]}\n```'
        ),
        (
            'Note {not json} then {"objects": ["kitten", "grass"], "attributes": ["small"]} '
            'and {"x": 1}'
        ),
        '{"other": 1} {"objects": ["kitten", " grass "], "attributes": ["small", ""]}',
    ],
)
def test_tags_are_found_in_free_text(reply):
    tags = parse_reply(reply)
    assert (tags.objects, tags.attributes) == (["kitten", "grass"], ["small"])


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("The caption shows a cat.", "no JSON object"),
        ('{"objects": ["cat"]}', "missing key(s) attributes"),
        ('{"objects": "cat", "attributes": []}', "not a list"),
        ('{"objects": [3], "attributes": []}', "not a string"),
        (
            '{"objects": ["a very long rambling description of a cat on a mat"], "attributes": []}',
            "too long",
        ),
        ('["cat"]', "expected a JSON object"),
        ('{"objects": ["cat", "attributes": [', "no JSON object"),  # cut off by max_tokens
    ],
)
def test_invalid_replies_are_rejected_with_a_reason(reply, reason):
    with pytest.raises(OutputError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_reply(reply)


def test_extraction_prefers_the_object_with_tag_keys():
    assert extract_json_object('{"a": 1} {"objects": []}') == {"objects": []}
    assert extract_json_object('x {"a": 1} y') == {"a": 1}
