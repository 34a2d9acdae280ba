"""Serve one GGUF model over HTTP with llama.cpp's own C++ server, from the `xllamacpp` wheel.

    python tests/tagparse/llm/xllamacpp_serve.py --model M.gguf --port 8080 [--alias NAME]

`xllamacpp` ships llama.cpp prebuilt (no compile on install) but has no command line: its
`Server(params)` starts the OpenAI-compatible HTTP server on threads of the calling process. This
script turns that into a real server process that `ManagedServer` can start, probe on
`/v1/models` and stop with SIGTERM, like `vllm serve`. It lives under tests/ (test support, not
shipped in the tagparse wheel): users point `--backend openai` at any server they run.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import xllamacpp

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error:` line and exit 2 (the project's rule)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}; see --help\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = _OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="GGUF file to serve")
    ap.add_argument("--alias", help="model id in /v1/models (default: the file's stem)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n-ctx", type=int, default=2048, help="context size, shared by all slots")
    ap.add_argument("--parallel", type=int, default=1, help="slots decoding at once")
    ap.add_argument("--threads", type=int, help="CPU threads (default: llama.cpp's choice)")
    ap.add_argument(
        "--no-prompt-cache",
        action="store_true",
        help="decode every prompt from scratch: no KV reuse of a slot's last prompt and no RAM "
        "cache of earlier prompts (a reply then depends on its prompt alone)",
    )
    return ap.parse_args(argv)


def server_params(args: argparse.Namespace) -> xllamacpp.CommonParams:
    """`xllamacpp.CommonParams` for `args` (llama-server's flags of the same names)."""
    params = xllamacpp.CommonParams()
    params.model.path = str(args.model)
    params.model_alias = {args.alias or args.model.stem}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.n_ctx
    params.n_parallel = args.parallel
    if args.no_prompt_cache:
        params.cache_prompt, params.cache_ram_mib, params.cache_idle_slots = False, 0, False
    if args.threads:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    return params


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.model.is_file():
        print(f"error: --model {args.model}: no such file; pass a GGUF file", file=sys.stderr)
        return 2
    # Blocked before the server's threads exist, so they inherit the mask and the stop signal is
    # taken here by sigwait instead of killing the process mid-request.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        server = xllamacpp.Server(server_params(args))
    except RuntimeError as e:  # no model loaded, the port taken...: llama.cpp's log line says which
        print(f"error: llama.cpp server did not start: {e}", file=sys.stderr)
        return 1
    print(f"listening on {server.listening_address}", flush=True)
    received = signal.sigwait(STOP_SIGNALS)
    del server  # ~Server ends the HTTP and decoding threads before the process exits
    print(f"stopped on {signal.Signals(received).name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
