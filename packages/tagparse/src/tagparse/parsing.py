"""What a parse is, independent of any backend: the parser's identity and one caption's result.

Both the backends (which produce them) and the storage layer (which caches them in tags.db)
import these types from here, so the storage layer does not depend on the parser interface.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParserSpec:
    """Everything that changes a parser's output; its fingerprint keys the parse cache."""

    backend: str
    normalizer_version: str
    model: str = ""
    prompt_id: str = ""
    prompt_hash: str = ""
    params: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        payload = json.dumps(
            {
                "backend": self.backend,
                "model": self.model,
                "prompt_id": self.prompt_id,
                "prompt_hash": self.prompt_hash,
                "normalizer_version": self.normalizer_version,
                "params": self.params,
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human name, e.g. `spacy:en_core_web_sm@3a9f...`."""
        name = self.backend + (f":{self.model}" if self.model else "")
        return f"{name}@{self.fingerprint[:8]}"


@dataclass
class ParseResult:
    """One caption's parse. `status` is "ok" or "error"; errors keep the raw output to debug."""

    objects: list[str]
    attributes: list[str]
    status: str = "ok"
    error: str = ""
    raw_output: str = ""

    @classmethod
    def failure(cls, error: str, raw_output: str = "") -> ParseResult:
        return cls([], [], status="error", error=error, raw_output=raw_output)
