"""Conversation formats for models that ship no chat template of their own.

Vicuna (v1.1 and later, used by `lmsys/vicuna-*-v1.3/v1.5`) is trained on FastChat's
"SYSTEM USER: ... ASSISTANT: ...</s>" layout. The same layout is rendered two ways: as text here
(for `tagparse prompts render` and completion endpoints) and as a Jinja chat template handed to
`vllm serve --chat-template`, so vLLM's chat endpoint (and its structured decoding) works for these
models; a test keeps the two renderings byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChatFormat:
    name: str
    user_role: str
    assistant_role: str
    turn_sep: str  # after a user turn
    reply_sep: str  # after an assistant turn (end of sequence)

    def render(self, messages: list[dict[str, str]]) -> str:
        """Text prompt ending with the open assistant role, ready for generation."""
        system, turns = _split_system(messages)
        out = system + self.turn_sep
        for m in turns:
            if m["role"] == "user":
                out += f"{self.user_role}: {m['content']}{self.turn_sep}"
            else:
                out += f"{self.assistant_role}: {m['content']}{self.reply_sep}"
        return out + f"{self.assistant_role}:"

    def jinja_template(self) -> str:
        """The same layout as a Hugging Face / vLLM chat template (first message: the system)."""
        return (
            "{{ messages[0]['content'] }}"
            + self.turn_sep
            + "{% for m in messages[1:] %}{% if m['role'] == 'user' %}"
            + f"{self.user_role}: {{{{ m['content'] }}}}{self.turn_sep}"
            + "{% else %}"
            + f"{self.assistant_role}: {{{{ m['content'] }}}}{self.reply_sep}"
            + "{% endif %}{% endfor %}"
            + f"{{% if add_generation_prompt %}}{self.assistant_role}:{{% endif %}}"
        )


def _split_system(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    if not messages or messages[0]["role"] != "system":
        raise ValueError("chat formats expect the system message first")
    return messages[0]["content"], messages[1:]


VICUNA_V1_1 = ChatFormat("vicuna_v1.1", "USER", "ASSISTANT", " ", "</s>")

CHAT_FORMATS = {f.name: f for f in (VICUNA_V1_1,)}
