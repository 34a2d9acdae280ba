"""vLLM's own offline engine on tagparse's requests: the ceiling bench_vllm.py compares against.

Runs INSIDE the vLLM environment (it imports vllm), never in the workspace:

    VLLM_PYTHON bench/vllm_offline.py JOB.json

JOB.json: {"model", "conversations" (tagparse's chat messages, one list per caption), "schema",
"max_tokens", "prefix_caching", "max_num_seqs"}. The engine decodes with the same JSON schema
(`StructuredOutputsParams(json=...)`) at temperature 0. Prints one JSON line: load and generate
seconds, and prompt / cached-prompt / output token totals.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(job_path: str) -> None:
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    job = json.loads(Path(job_path).read_text())
    started = time.monotonic()
    llm = LLM(
        model=job["model"],
        enable_prefix_caching=job["prefix_caching"],
        max_num_seqs=job["max_num_seqs"],
    )
    loaded = time.monotonic()
    params = SamplingParams(
        temperature=0.0,
        max_tokens=job["max_tokens"],
        structured_outputs=StructuredOutputsParams(json=job["schema"]),
    )
    outputs = llm.chat(job["conversations"], params, use_tqdm=False)
    done = time.monotonic()
    result = {
        "load_s": loaded - started,
        "generate_s": done - loaded,
        "captions": len(outputs),
        "prompt_tokens": sum(len(o.prompt_token_ids) for o in outputs),
        "cached_tokens": sum(o.num_cached_tokens or 0 for o in outputs),
        "output_tokens": sum(len(o.outputs[0].token_ids) for o in outputs),
        "replies": [o.outputs[0].text for o in outputs],
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
