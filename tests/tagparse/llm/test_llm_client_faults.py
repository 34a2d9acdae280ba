"""The OpenAI backend against a FAKE server that fails on demand (see conftest.py for why a fake).

Each fault must be retried a bounded number of times, end as a per-caption result (never an
exception), and keep the batch order; configuration mistakes are one-line TagparseErrors.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from tagparse.backends import openai_backend
from tagparse.errors import TagparseError


def make_backend(url: str, **options):
    options = {"concurrency": 8, "max_retries": 3, "timeout": 1.0, **options}
    return openai_backend.create(base_url=url, **options)


def test_transient_faults_are_retried_until_they_pass(fake_server):
    captions = [
        "a red [500x2] bicycle",
        "a [429x1] sleepy tabby",
        "a [badbodyx1] wooden bench",
        "a [dropx1] yellow taxi",
        "a [hangx1] rusty anchor",
        "a plain green apple",
    ]
    start = time.monotonic()
    results = make_backend(fake_server.url).parse_batch(captions)
    elapsed = time.monotonic() - start

    assert [r.status for r in results] == ["ok"] * len(captions), [r.error for r in results]
    assert results[0].objects == ["red", "bicycle"]  # order kept, reply normalised
    assert results[5].objects == ["plain", "green", "apple"]
    expected_requests = {
        captions[0]: 3,
        captions[1]: 2,
        captions[2]: 2,
        captions[3]: 2,
        captions[4]: 2,
        captions[5]: 1,
    }
    assert dict(fake_server.requests) == expected_requests
    assert elapsed >= 1.0  # the 429's Retry-After: 1 was honoured


def test_persistent_faults_become_failures_with_bounded_retries(fake_server):
    captions = [
        "an [always500] old clock",
        "a [schema] shiny kettle",
        "a [prose] tall giraffe",
        "a [hangx9] silver spoon",
        "a fine brown horse",
    ]
    results = make_backend(fake_server.url, max_retries=2).parse_batch(captions)

    status = [r.status for r in results]
    assert status == ["error", "error", "error", "error", "ok"]
    assert "HTTP 500" in results[0].error and "3 attempts" in results[0].error
    assert "missing key(s) objects, attributes" in results[1].error
    assert results[1].raw_output == '{"tags": ["shiny", "kettle"]}'  # raw reply kept for debugging
    assert "no JSON object" in results[2].error and results[2].raw_output.startswith("Sure!")
    assert "--timeout 1s" in results[3].error
    # server faults: 1 + max_retries attempts; invalid replies are not re-asked
    assert fake_server.requests[captions[0]] == 3
    assert fake_server.requests[captions[3]] == 3
    assert fake_server.requests[captions[1]] == 1 and fake_server.requests[captions[2]] == 1


@pytest.mark.parametrize("status", [400, 500])  # llama-cpp-python's server answered 500
def test_structured_output_falls_back_and_remembers_per_server(make_fake_server, status):
    server = make_fake_server(reject_json_schema=status)
    backend = make_backend(server.url, concurrency=1)
    first = backend.parse_batch(["a black cat"])
    assert first[0].status == "ok"
    assert server.modes == ["json_schema", "json_object_schema"]
    backend.parse_batch(["a white dog", "a grey mouse"])
    assert server.modes[2:] == ["json_object_schema"] * 2  # json_schema not asked again

    other = make_fake_server()  # another server keeps its own capabilities
    make_backend(other.url).parse_batch(["a brown owl"])
    assert other.modes == ["json_schema"]


def test_a_vllm_server_gets_the_schema_through_its_own_field_never_plain_json_mode(
    make_fake_server,
):
    server = make_fake_server(reject_json_schema=400, owned_by="vllm")
    backend = make_backend(server.url, concurrency=1)
    assert [r.status for r in backend.parse_batch(["a black cat", "a white dog"])] == ["ok", "ok"]
    # refused json_schema once, then vLLM's `structured_outputs`; no json_object ever
    assert server.modes == ["json_schema", "structured_outputs", "structured_outputs"]
    assert server.token_fields == {"max_completion_tokens"}  # vLLM deprecates max_tokens
    other = make_fake_server()  # not vLLM: the portable field name
    make_backend(other.url).parse_batch(["a brown owl"])
    assert other.token_fields == {"max_tokens"}


def test_api_key_is_sent_but_never_appears_in_errors(make_fake_server, monkeypatch):
    secret = "sk-test-Zq81secretKEY"
    monkeypatch.setenv("MY_LLM_KEY", secret)
    server = make_fake_server(echo_auth=True)
    results = make_backend(server.url, api_key_env="MY_LLM_KEY", max_retries=1).parse_batch(
        ["an [always500] empty vase"]
    )
    assert server.auth_headers == {f"Bearer {secret}"}
    assert results[0].status == "error" and "***" not in results[0].error  # 500 body not quoted
    assert secret not in results[0].error + results[0].raw_output
    assert secret not in repr(make_backend(server.url, api_key_env="MY_LLM_KEY").spec)


def test_configuration_mistakes_are_one_line_errors(fake_server, monkeypatch):
    with pytest.raises(TagparseError, match="cannot reach the LLM server"):
        make_backend("http://127.0.0.1:9/v1")
    with pytest.raises(TagparseError, match="not served by"):
        make_backend(fake_server.url, model="vicuna-33b")
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(TagparseError, match="--api-key-env NO_SUCH_KEY_VAR"):
        make_backend(fake_server.url, api_key_env="NO_SUCH_KEY_VAR")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(TagparseError, match="needs --base-url"):
        openai_backend.create(model="x")


def test_spec_carries_model_prompt_and_sampling(fake_server):
    backend = make_backend(fake_server.url, temperature=0.2, max_tokens=64)
    spec = backend.spec
    assert (spec.backend, spec.model, spec.prompt_id) == ("openai", "fake-model", "tags-v1")
    assert spec.params == {"temperature": 0.2, "max_tokens": 64}
    zeroshot = make_backend(
        fake_server.url, temperature=0.2, max_tokens=64, prompt="tags-v1-zeroshot"
    ).spec
    assert zeroshot.prompt_hash != spec.prompt_hash and zeroshot.fingerprint != spec.fingerprint
    # without contacting a server, the fingerprint is known once the model is named
    offline = openai_backend.spec(model="fake-model", temperature=0.2, max_tokens=64)
    assert offline.fingerprint == spec.fingerprint


def test_parse_batch_works_inside_a_running_event_loop(fake_server):
    """Notebooks call the Python API from inside an event loop."""
    backend = make_backend(fake_server.url)

    async def inside_loop():
        return backend.parse_batch(["a black cat"])

    assert asyncio.run(inside_loop())[0].objects == ["black", "cat"]
