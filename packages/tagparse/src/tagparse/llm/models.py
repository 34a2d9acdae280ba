"""Short model names for the LLMs tagparse is used with, and the chat format each one needs.

The paper parses CC12M with Vicuna-33B (v1.3); the newer instruct models ship chat templates of
their own, so they need no entry in `CHAT_FORMATS`.
"""

from __future__ import annotations

from tagparse.prompts.chat_formats import CHAT_FORMATS, ChatFormat

MODEL_ALIASES: dict[str, str] = {
    "vicuna-33b": "lmsys/vicuna-33b-v1.3",
    "vicuna-13b": "lmsys/vicuna-13b-v1.5",
    "vicuna-7b": "lmsys/vicuna-7b-v1.5",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B-Instruct",
    "qwen2.5-32b": "Qwen/Qwen2.5-32B-Instruct",
    "llama3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "mistral-7b": "mistralai/Mistral-7B-Instruct-v0.3",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
}

# Model-id substrings (lowercase) of families without a chat template of their own.
_FAMILY_FORMATS: dict[str, str] = {"vicuna": "vicuna_v1.1"}


def resolve_model(name: str) -> str:
    """Hugging Face id for an alias; any other name (a path, a served model name) unchanged."""
    return MODEL_ALIASES.get(name, name)


def chat_format_for(model: str) -> ChatFormat | None:
    """The conversation format a model needs when its tokenizer has no chat template."""
    model_id = resolve_model(model).lower()
    for family, fmt in _FAMILY_FORMATS.items():
        if family in model_id:
            return CHAT_FORMATS[fmt]
    return None
