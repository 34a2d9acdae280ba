"""An async client for OpenAI-compatible chat servers (vLLM, llama.cpp, OpenAI, ...).

It keeps `concurrency` requests in flight, retries transient faults (429 honouring Retry-After,
5xx, timeouts, dropped connections, unreadable bodies) with exponential backoff and jitter up to
`max_retries` times, and asks for structured output in the strongest form the server accepts:
JSON-schema `response_format`, then JSON mode with a schema, then plain JSON mode, then plain text
(the caller extracts JSON). A vLLM server gets only schema-constrained modes: `response_format`,
then vLLM's own `structured_outputs` field (vLLM maps JSON mode to "any JSON", ignoring a schema).
A mode the server rejects is remembered for that server, so later requests skip it. The API key
is sent in a header only; every error text is scrubbed of it before it leaves this module.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from tagparse.errors import TagparseError

# Strongest first. "json_object_schema" is the JSON-mode-with-schema extension that llama.cpp's
# Python server (and some hosted APIs) accept instead of OpenAI's "json_schema" type.
STRUCTURED_MODES = ("json_schema", "json_object_schema", "json_object", "text")
# vLLM: the schema always constrains decoding; its own field when response_format is refused.
VLLM_MODES = ("json_schema", "structured_outputs")
MAX_RETRY_AFTER_S = 120.0

# Per server (base URL): structured-output modes it rejected, shared by every client in the process.
_UNSUPPORTED_MODES: dict[str, set[str]] = {}


@dataclass
class Reply:
    """One request's outcome: the model's text, or why there is none after all retries."""

    content: str | None
    error: str = ""
    raw: str = ""  # the response body when it could not be used


class _Transient(Exception):
    """A fault worth retrying; `wait` is the server's Retry-After in seconds, if it gave one."""

    def __init__(self, message: str, wait: float | None = None, raw: str = ""):
        super().__init__(message)
        self.wait = wait
        self.raw = raw


class ChatClient:
    """Sends chat requests for many prompts at once; collects one `Reply` per prompt, in order."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 3,
        timeout: float = 60.0,
        temperature: float = 0.0,
        max_tokens: int = 256,
        schema: dict | None = None,
        modes: Sequence[str] = STRUCTURED_MODES,
        token_limit_field: str = "max_tokens",
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key or None
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.schema = schema
        self.modes = tuple(modes)
        self.token_limit_field = token_limit_field  # vLLM/OpenAI: "max_completion_tokens"
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap

    # -- public --------------------------------------------------------------------------------
    def complete_all(self, conversations: Sequence[list[dict[str, str]]]) -> list[Reply]:
        """Blocking: run all conversations with `concurrency` in flight; never raises per prompt.

        Called from inside a running event loop (a notebook), it runs on a helper thread.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._complete_all(conversations))
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self._complete_all(conversations)).result()

    def supported_modes(self) -> list[str]:
        rejected = _UNSUPPORTED_MODES.get(self.base_url, set())
        modes = [m for m in self.modes if m not in rejected]
        return modes if self.schema is not None else ["text"]

    def redact(self, text: str) -> str:
        return redact(text, self._api_key)

    # -- internals -----------------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        """The request headers (the key, if any): `--distributor ray`'s HTTP stage sends them."""
        return _auth_headers(self._api_key)

    def _auth_message(self, status: int) -> str:
        return _auth_message(self.base_url, status)

    def http_client(self) -> httpx.AsyncClient:
        """A connection pool of `concurrency` connections with this client's key and timeout."""
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        return httpx.AsyncClient(
            headers=self.headers(), limits=limits, timeout=httpx.Timeout(self.timeout)
        )

    async def _complete_all(self, conversations: Sequence[list[dict[str, str]]]) -> list[Reply]:
        gate = asyncio.Semaphore(self.concurrency)
        async with self.http_client() as http:

            async def one(messages: list[dict[str, str]]) -> Reply:
                async with gate:
                    return await self.complete(http, messages)

            return list(await asyncio.gather(*(one(m) for m in conversations)))

    async def complete(self, http: httpx.AsyncClient, messages: list[dict[str, str]]) -> Reply:
        """One conversation, retried as the module doc says; configuration mistakes raise."""
        attempt = 0
        while True:
            try:
                return await self._post_with_fallback(http, messages)
            except _Transient as fault:
                if attempt >= self.max_retries:
                    tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                    return Reply(
                        None,
                        self.redact(f"{fault} (gave up after {tries})"),
                        raw=self.redact(fault.raw),
                    )
                await asyncio.sleep(self._delay(attempt, fault.wait))
                attempt += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S) + random.uniform(0, self.backoff_base)
        exp = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return exp / 2 + random.uniform(0, exp / 2)  # "equal jitter": never zero, never in lockstep

    async def _post_with_fallback(
        self, http: httpx.AsyncClient, messages: list[dict[str, str]]
    ) -> Reply:
        """Try structured modes strongest first; a rejected mode falls through to the next."""
        modes = self.supported_modes()
        rejected: list[str] = []
        for i, mode in enumerate(modes):
            resp = await self._post(http, self.payload(messages, mode))
            if _rejects_request(resp) and i + 1 < len(modes):
                rejected.append(mode)
                continue
            reply = self._read(resp)
            if rejected and reply.content is not None:
                _UNSUPPORTED_MODES.setdefault(self.base_url, set()).update(rejected)
            return reply
        raise AssertionError("unreachable: the last mode always returns")

    def payload(self, messages: list[dict[str, str]], mode: str) -> dict:
        """One chat request's JSON body in structured-output `mode` (one of `self.modes`)."""
        payload = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            self.token_limit_field: self.max_tokens,
        }
        if mode == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "tags", "schema": self.schema, "strict": True},
            }
        elif mode == "json_object_schema":
            payload["response_format"] = {"type": "json_object", "schema": self.schema}
        elif mode == "json_object":
            payload["response_format"] = {"type": "json_object"}
        elif mode == "structured_outputs":
            payload["structured_outputs"] = {"json": self.schema}
        return payload

    async def _post(self, http: httpx.AsyncClient, payload: dict) -> httpx.Response:
        start = time.monotonic()
        try:
            return await http.post(f"{self.base_url}/chat/completions", json=payload)
        except httpx.TimeoutException:
            raise _Transient(
                f"no answer within --timeout {self.timeout:g}s "
                f"(after {time.monotonic() - start:.1f}s)"
            ) from None
        except httpx.TransportError as e:
            raise _Transient(f"connection failed or dropped ({type(e).__name__})") from None

    def _read(self, resp: httpx.Response) -> Reply:
        status = resp.status_code
        if status in (401, 403):
            raise TagparseError(self._auth_message(status))
        if status == 404:
            raise TagparseError(
                self.redact(
                    f"{self.base_url}/chat/completions: HTTP 404 ({resp.text[:200]}); "
                    "check --model and --base-url (it should end in /v1)"
                )
            )
        if status == 429:
            raise _Transient("rate limited (HTTP 429)", _retry_after(resp))
        if status >= 500:
            raise _Transient(f"server error (HTTP {status})", _retry_after(resp))
        if status != 200:
            return Reply(
                None,
                self.redact(f"request rejected (HTTP {status}): {resp.text[:300]}"),
                raw=self.redact(resp.text),
            )
        try:
            body = resp.json()
            content = body["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Transient(
                "unreadable response body (not an OpenAI chat completion)", raw=resp.text[:2000]
            ) from None
        return Reply(content if isinstance(content, str) else "")


@dataclass(frozen=True)
class ServedModels:
    """What `/v1/models` says: the model ids, and whether the server is vLLM (`owned_by`)."""

    ids: list[str]
    vllm: bool


def list_models(
    base_url: str, *, api_key: str | None = None, timeout: float = 30.0
) -> ServedModels:
    """The server's models; a one-line TagparseError when it cannot be reached."""
    url = f"{base_url.rstrip('/')}/models"
    try:
        resp = httpx.get(url, headers=_auth_headers(api_key), timeout=timeout)
    except httpx.HTTPError as e:
        raise TagparseError(
            redact(
                f"cannot reach the LLM server at {url} ({type(e).__name__}: {e}); start it or fix "
                "--base-url",
                api_key,
            )
        ) from None
    if resp.status_code in (401, 403):
        raise TagparseError(_auth_message(base_url, resp.status_code))
    if resp.status_code != 200:
        raise TagparseError(
            f"{url} answered HTTP {resp.status_code}; is --base-url an OpenAI-compatible /v1 URL?"
        )
    try:
        entries = resp.json()["data"]
        ids = [m["id"] for m in entries]
        vllm = bool(entries) and all(m.get("owned_by") == "vllm" for m in entries)
        return ServedModels(ids, vllm)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TagparseError(
            f"{url} did not return an OpenAI model list; check --base-url"
        ) from None


def redact(text: str, api_key: str | None) -> str:
    """`text` with the API key replaced by ***, so no error or log line can carry it."""
    return text.replace(api_key, "***") if api_key else text


def _auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _auth_message(base_url: str, status: int) -> str:
    return (
        f"the LLM server at {base_url} refused the API key (HTTP {status}); set "
        "OPENAI_API_KEY or name the variable holding it with --api-key-env"
    )


def _rejects_request(resp: httpx.Response) -> bool:
    """A refusal of the request's form: 400/422, or a 5xx blaming `response_format` (llama.cpp's
    Python server answers an unknown response_format type with HTTP 500)."""
    if resp.status_code in (400, 422):
        return True
    return resp.status_code >= 500 and "response_format" in resp.text


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
