"""`--backend openai`: tag parsing by any OpenAI-compatible chat server (vLLM, llama.cpp, OpenAI).

Each caption becomes one chat request (shared few-shot prefix + the caption as quoted data); the
reply is validated, normalised and returned as a `ParseResult`. Faults and invalid replies become
per-caption failures that keep the raw reply; only configuration mistakes (unreachable server,
refused key, unknown model) stop the run, with a one-line error.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence

from tagparse.errors import TagparseError
from tagparse.llm.chat_stream import ChatStream
from tagparse.llm.client import STRUCTURED_MODES, VLLM_MODES, ChatClient, Reply, list_models
from tagparse.llm.models import resolve_model
from tagparse.llm.output import OutputError, parse_reply
from tagparse.parsing import ParseResult, ParserSpec
from tagparse.prompts import DEFAULT_PROMPT, PromptTemplate, load_prompt
from tagparse.stream import Completion, Completions


class LLMBackend:
    """Parses captions with a chat model behind an OpenAI-compatible endpoint."""

    def __init__(self, client: ChatClient, prompt: PromptTemplate, normalizer, spec: ParserSpec):
        self.client = client
        self.prompt = prompt
        self.normalizer = normalizer
        self.spec = spec

    def parse_batch(self, captions: Sequence[str]) -> list[ParseResult]:
        replies = self.client.complete_all([self.prompt.messages(c) for c in captions])
        return [self.result(r) for r in replies]

    def open_stream(self) -> LLMStream:
        """The streaming form `tagparse run` uses: requests refilled as each reply comes in."""
        return LLMStream(self)

    def result(self, reply: Reply) -> ParseResult:
        """A reply validated and normalised, or a failure that keeps the raw text."""
        if reply.content is None:
            return ParseResult.failure(reply.error, reply.raw)
        try:
            tags = parse_reply(reply.content)
        except OutputError as e:
            return ParseResult.failure(f"invalid model output: {e}", reply.content)
        return ParseResult(
            self.normalizer.objects(tags.objects),
            self.normalizer.attributes(tags.attributes),
            raw_output=reply.content,
        )


class LLMStream:
    """A `tagparse.stream.ParseStream` over one `ChatStream`.

    The window is twice `--concurrency`: `concurrency` requests at the server and as many ready
    in the loop, so a reply's slot is refilled at once even while the writer is committing.
    Replies are turned into results on the writer's thread (the normalizer is not shared).
    """

    def __init__(self, backend: LLMBackend):
        self._backend = backend
        self.window = 2 * backend.client.concurrency
        self._done = Completions()
        self._chat = ChatStream(backend.client, self._deliver)

    def submit(self, tag: Hashable, caption: str) -> None:
        self._chat.submit(tag, self._backend.prompt.messages(caption))

    def flush(self) -> None:
        """Nothing is held back: every caption is sent when submitted."""

    def completed(self, timeout: float) -> list[Completion]:
        return [(tag, self._backend.result(reply)) for tag, reply in self._done.take(timeout)]

    def close(self) -> None:
        self._chat.close()

    def _deliver(self, tag: Hashable, reply: Reply | BaseException) -> None:
        self._done.put(reply if isinstance(reply, BaseException) else [(tag, reply)])


def create(*, base_url: str | None = None, model: str | None = None, **options) -> LLMBackend:
    """The `openai` backend; options are `tagparse run`'s flags (others are ignored)."""
    return build_llm_backend("openai", _base_url(base_url), model, **options)


def spec(*, model: str | None = None, **options) -> ParserSpec | None:
    """The fingerprint without contacting the server; unknown (None) until a --model is named."""
    if not model:
        return None
    return llm_spec("openai", resolve_model(model), **options)


def llm_spec(
    backend: str,
    model_id: str,
    *,
    prompt: str | None = None,
    temperature: float | None = 0.0,
    max_tokens: int | None = 256,
    normalizer=None,
    spec_params: dict | None = None,
    **_ignored,
) -> ParserSpec:
    """Everything that changes the output: model, prompt id + hash, sampling, normalizer."""
    template = load_prompt(prompt or DEFAULT_PROMPT)
    normalizer = normalizer if normalizer is not None else _default_normalizer()
    return ParserSpec(
        backend=backend,
        normalizer_version=normalizer.version,
        model=model_id,
        prompt_id=template.id,
        prompt_hash=template.hash,
        params={
            "temperature": float(temperature or 0.0),
            "max_tokens": int(max_tokens or 256),
            **(spec_params or {}),
        },
    )


def build_llm_backend(
    backend: str,
    base_url: str,
    model: str | None,
    *,
    api_key_env: str | None = None,
    concurrency: int | None = 8,
    max_retries: int | None = 3,
    timeout: float | None = 60.0,
    normalizer=None,
    **options,
) -> LLMBackend:
    """Shared by the `openai` and `vllm` backends: resolve key, served model, prompt and spec."""
    api_key = _api_key(api_key_env)
    timeout = timeout or 60.0
    served = list_models(base_url, api_key=api_key, timeout=min(timeout, 30.0))
    request_model = _served_model(base_url, served.ids, model)
    normalizer = normalizer if normalizer is not None else _default_normalizer()
    # the canonical id (alias resolved), whichever name the server knows the model by
    spec = llm_spec(
        backend, resolve_model(model or request_model), normalizer=normalizer, **options
    )
    template = load_prompt(spec.prompt_id)
    client = ChatClient(
        base_url,
        request_model,
        api_key=api_key,
        concurrency=concurrency or 8,
        max_retries=3 if max_retries is None else max_retries,
        timeout=timeout,
        temperature=spec.params["temperature"],
        max_tokens=spec.params["max_tokens"],
        schema=template.schema,
        modes=VLLM_MODES if served.vllm else STRUCTURED_MODES,
        token_limit_field="max_completion_tokens" if served.vllm else "max_tokens",
    )
    return LLMBackend(client, template, normalizer, spec)


def _base_url(base_url: str | None) -> str:
    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise TagparseError(
            "--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1 for a "
            "local `vllm serve`, or https://api.openai.com/v1"
        )
    return base_url


def _api_key(api_key_env: str | None) -> str | None:
    """The key from `--api-key-env`'s variable, else OPENAI_API_KEY; local servers need none."""
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise TagparseError(
                f"--api-key-env {api_key_env}: that environment variable is not set"
            )
        return key
    return os.environ.get("OPENAI_API_KEY") or None


def _served_model(base_url: str, served: list[str], model: str | None) -> str:
    """The name to request: the only served model, or `model` (or its alias target) if served."""
    if model is None:
        if len(served) == 1:
            return served[0]
        raise TagparseError(
            f"{base_url} serves {len(served)} models; pick one with --model "
            f"({', '.join(served[:10]) or 'none listed'})"
        )
    model_id = resolve_model(model)
    for name in (model_id, model):
        if name in served:
            return name
    raise TagparseError(
        f"model {model!r} is not served by {base_url}; it serves: "
        f"{', '.join(served[:10]) or 'nothing'}"
    )


def _default_normalizer():
    from tagparse.normalize import Normalizer  # lazy: owned by the NLP backends, spaCy-free

    return Normalizer()
