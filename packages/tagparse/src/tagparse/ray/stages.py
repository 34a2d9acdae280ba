"""Each backend as a Ray Data stage over `tagparse.ray.source.SCHEMA` rows: `result` filled in
for the rows marked `parse`, every other row passed through unchanged.

- spaCy, NLTK and any registered backend: `map_batches` over a fixed pool of `workers` actors
  (`ActorPoolStrategy`), each holding one backend built once, one `parse_batch` per block.
- `--backend openai`: `ray.data.llm`'s HTTP request processor, `workers` client actors against
  the server; our prompt builds the request (preprocess), our validation and normalizer read the
  reply (postprocess).
- `--backend vllm`: `ray.data.llm`'s vLLM engine processor, one engine per data-parallel
  replica (GPU actors), configured from our flags by `vllm_processor_config`. NOT run here (no
  GPU, and `ray[llm]` pins its own vLLM): only its configuration is tested.

The `ray.data.llm` processors send every row they get. Rows not to parse (cached, empty, file
notes) carry Ray's per-row error marker, which its stages and postprocess pass through untouched
(the mechanism behind `should_continue_on_error`), so one read feeds both kinds of row.

A dead actor is restarted and its block retried up to `RESTARTS` times (Ray Data's default is
forever, which would turn a worker that always dies into a hung run); then the run stops.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pyarrow as pa
import ray
from ray.data import ActorPoolStrategy

from tagparse.backends import build_backend, vllm_backend
from tagparse.backends.openai_backend import LLMBackend
from tagparse.errors import TagparseError
from tagparse.lazyparser import failed_call
from tagparse.llm.client import Reply
from tagparse.normalize import Normalizer
from tagparse.parsing import ParseResult
from tagparse.prompts import load_prompt
from tagparse.ray.source import FIELDS, SCHEMA, encode_result

RESTARTS = 3  # per actor: restarts after a crash, and retries of the block it held
# ray.data.llm's per-row error column: a row with it set skips every stage and the postprocess
PASS_THROUGH = "__inference_error__"
NOT_SENT = "tagparse: not sent (cached, empty or a file note)"

Stage = Callable[[ray.data.Dataset], ray.data.Dataset]


class BackendActor:
    """One worker: the backend built once, then one `parse_batch` per block (its distinct
    captions to parse), as a local worker process does."""

    def __init__(self, name: str, create: Callable, options: dict):
        self._backend = build_backend(name, create, options)

    def __call__(self, table: pa.Table) -> pa.Table:
        rows = table.to_pylist()
        wanted: dict[str, list[dict]] = {}
        for row in rows:
            if row["parse"]:
                wanted.setdefault(row["caption"], []).append(row)
        captions = list(wanted)
        if captions:
            try:
                results = self._backend.parse_batch(captions)
            except Exception as e:  # noqa: BLE001 -- per-caption failures, unless fatal (raised)
                results = failed_call(e, len(captions))
            if len(results) != len(captions):
                raise RuntimeError(f"{len(results)} results for {len(captions)} captions")
            for caption, result in zip(captions, results):
                for row in wanted[caption]:
                    row["result"] = encode_result(result)
        return pa.Table.from_pylist(rows, schema=SCHEMA)


def restart_budget() -> dict:
    """The Ray options of a stage's actors: `RESTARTS` restarts and block retries."""
    return {"max_restarts": RESTARTS, "max_task_retries": RESTARTS}


def actor_pool_stage(name: str, create: Callable, options: dict, workers: int) -> Stage:
    def stage(ds: ray.data.Dataset) -> ray.data.Dataset:
        with warnings.catch_warnings():
            # Ray 2.60 names no other way to bound the actor restarts (its default: forever)
            warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
            return ds.map_batches(
                BackendActor,
                fn_constructor_kwargs={"name": name, "create": create, "options": options},
                compute=ActorPoolStrategy(size=workers),
                batch_size=None,  # one read block (`--chunk-size` records) per call
                batch_format="pyarrow",
                num_cpus=1,
                **restart_budget(),
            )

    return stage


def _not_sent(row: dict) -> dict:
    return {PASS_THROUGH: NOT_SENT}


def _answered(row: dict, result: ParseResult) -> dict:
    """A processor's output row: the input's columns, the result, Ray's (empty) error column."""
    return {**{k: row[k] for k in FIELDS}, "result": encode_result(result), PASS_THROUGH: ""}


def http_stage(backend: LLMBackend, block_rows: int, workers: int) -> Stage:
    """`--backend openai` through `HttpRequestProcessorConfig`. The driver has already checked
    the server (`/v1/models`: reachable, key accepted, model served) when it built `backend`.
    The request form is the client's strongest structured mode for that server: the HTTP
    stage sends one form, without the local client's fallback cascade."""
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    client = backend.client
    mode = client.supported_modes()[0]
    config = HttpRequestProcessorConfig(
        url=f"{client.base_url}/chat/completions",
        headers=client.headers(),
        batch_size=block_rows,
        concurrency=workers,
        max_retries=client.max_retries,
    )

    def request(row: dict) -> dict:
        if not row["parse"]:
            return _not_sent(row)
        return {"payload": client.payload(backend.prompt.messages(row["caption"]), mode)}

    def answer(row: dict) -> dict:
        return _answered(row, backend.result(chat_reply(row["http_response"])))

    return build_processor(config, preprocess=request, postprocess=answer)


def chat_reply(body) -> Reply:
    """An OpenAI chat-completion body (or an error body) as the client's `Reply`."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return Reply(None, f"request rejected: {str(body)[:300]}", raw=str(body)[:2000])
    return Reply(content if isinstance(content, str) else "")


def vllm_processor_config(
    model_id: str,
    *,
    tensor_parallel_size: int = 1,
    data_parallel_size: int = 1,
    max_num_seqs: int = vllm_backend.MAX_NUM_SEQS,
    batch_size: int = 256,
):
    """`--backend vllm`'s flags as Ray Data LLM's engine config: one engine per data-parallel
    replica (`concurrency`), each over `tensor_parallel_size` GPUs, vLLM's batch of
    `max_num_seqs`, prefix caching of the shared few-shot prefix (as `vllm_command` serves it).
    Untested on a GPU."""
    from ray.data.llm import vLLMEngineProcessorConfig

    return vLLMEngineProcessorConfig(
        model_source=model_id,
        engine_kwargs={
            "tensor_parallel_size": tensor_parallel_size,
            "max_num_seqs": max_num_seqs,
            "enable_prefix_caching": True,
        },
        concurrency=data_parallel_size,
        batch_size=batch_size,
    )


def vllm_stage(options: dict, block_rows: int) -> Stage:
    """`--backend vllm` as GPU actors holding vLLM engines (`ray[llm]` on the cluster; untested
    here). Requests carry our chat messages and the prompt's JSON schema as vLLM's
    structured-output parameter; replies go through our validation and normalizer."""
    from ray.data.llm import build_processor

    if options.get("vllm_args"):
        raise TagparseError(
            "--vllm-args: flags of the `vllm serve` that --distributor local starts; Ray's "
            "engines take no such flags here, drop it (or parse with --distributor local)"
        )
    spec = vllm_backend.spec(**options)
    if spec is None:
        vllm_backend.create(**options)  # raises the missing --model error
    prompt = load_prompt(spec.prompt_id)
    dp = options.get("data_parallel_size") or 1
    config = vllm_processor_config(
        spec.model,
        tensor_parallel_size=options.get("tensor_parallel_size") or 1,
        data_parallel_size=dp,
        max_num_seqs=-(-(options.get("concurrency") or vllm_backend.MAX_NUM_SEQS * dp) // dp),
        batch_size=block_rows,
    )
    reader = LLMBackend(None, prompt, options.get("normalizer") or Normalizer(), spec)
    sampling = {
        "temperature": spec.params["temperature"],
        "max_tokens": spec.params["max_tokens"],
        "structured_outputs": {"json": prompt.schema},
    }

    def request(row: dict) -> dict:
        if not row["parse"]:
            return _not_sent(row)
        return {"messages": prompt.messages(row["caption"]), "sampling_params": sampling}

    def answer(row: dict) -> dict:
        return _answered(row, reader.result(Reply(row.get("generated_text") or "")))

    return build_processor(config, preprocess=request, postprocess=answer)


def stage_for(parser, block_rows: int) -> Stage:
    """The stage of `parser`'s (a `LazyParser`) backend, as the module doc says."""
    if parser.name == "openai":
        return http_stage(parser.local_backend(), block_rows, parser.workers)
    if parser.name == "vllm":
        return vllm_stage(parser.options, block_rows)
    return actor_pool_stage(parser.name, parser.create, parser.options, parser.workers)
