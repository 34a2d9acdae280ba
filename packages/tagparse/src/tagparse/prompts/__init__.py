"""Versioned prompt templates for LLM tag parsing, shipped as data files inside the package.

A template's id and content hash go into the parser fingerprint, so editing a prompt never serves
stale cache entries. Rendering keeps everything before the caption byte-identical across captions
(system text + few-shot turns), so servers with prefix caching compute that prefix once; the
caption itself is inserted as a JSON string literal, i.e. as quoted data, never as instructions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from tagparse.errors import TagparseError

DEFAULT_PROMPT = "tags-v1"
_DATA = "data"


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    description: str
    system: str
    user_template: str
    examples: tuple[dict, ...]
    schema: dict
    hash: str

    def user_message(self, caption: str) -> str:
        """The user turn for one caption; `json.dumps` quotes and escapes it as a string literal."""
        return self.user_template.format(caption_json=json.dumps(caption, ensure_ascii=False))

    def prefix_messages(self) -> list[dict[str, str]]:
        """System text and few-shot turns: identical for every caption (the cacheable prefix)."""
        messages = [{"role": "system", "content": self.system}]
        for ex in self.examples:
            answer = {"objects": ex["objects"], "attributes": ex["attributes"]}
            messages.append({"role": "user", "content": self.user_message(ex["caption"])})
            messages.append(
                {"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)}
            )
        return messages

    def messages(self, caption: str) -> list[dict[str, str]]:
        """The full chat for one caption: the shared prefix, then the caption's user turn."""
        return self.prefix_messages() + [{"role": "user", "content": self.user_message(caption)}]


def list_prompts() -> list[str]:
    """Ids of the prompt templates shipped with tagparse, sorted."""
    files = resources.files(__name__).joinpath(_DATA).iterdir()
    return sorted(f.name.removesuffix(".json") for f in files if f.name.endswith(".json"))


def load_prompt(name: str = DEFAULT_PROMPT) -> PromptTemplate:
    """A shipped template by id, or your own template file (`my-prompt.json`, same layout).

    The hash covers the whole canonicalised content, so any edit gives a new parser fingerprint.
    """
    if name.endswith(".json"):
        path = Path(name)
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TagparseError(
                f"--prompt {path}: cannot read it ({e}); pass a shipped prompt id "
                "or a readable JSON file"
            ) from None
        return _parse(text, str(path))
    if name not in list_prompts():
        raise TagparseError(
            f"unknown prompt {name!r}; available: {', '.join(list_prompts())} "
            "(see `tagparse prompts list`), or pass a .json file"
        )
    return _shipped(name)


@cache
def _shipped(prompt_id: str) -> PromptTemplate:
    return _parse(
        resources.files(__name__).joinpath(_DATA, f"{prompt_id}.json").read_text("utf-8"),
        f"{prompt_id}.json",
    )


def _parse(text: str, source: str) -> PromptTemplate:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise TagparseError(
            f"prompt file {source}: invalid JSON at line {e.lineno}: {e.msg}"
        ) from None
    missing = {"id", "system", "user_template", "examples", "schema"} - data.keys()
    if missing:
        raise TagparseError(f"prompt file {source}: missing key(s) {', '.join(sorted(missing))}")
    if "{caption_json}" not in data["user_template"]:
        raise TagparseError(f"prompt file {source}: user_template must contain {{caption_json}}")
    for i, ex in enumerate(data["examples"]):
        if not {"caption", "objects", "attributes"} <= ex.keys():
            raise TagparseError(
                f"prompt file {source}: example {i} needs caption, objects, attributes"
            )
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return PromptTemplate(
        id=data["id"],
        description=data.get("description", ""),
        system=data["system"],
        user_template=data["user_template"],
        examples=tuple(data["examples"]),
        schema=data["schema"],
        hash=hashlib.sha256(canonical.encode()).hexdigest()[:16],
    )
