"""Run an OpenAI-compatible inference server as a managed subprocess.

`--backend vllm` starts vLLM's OpenAI server this way and then talks to it exactly like
`--backend openai` does, so there is one request path to test; the tests drive this same class
with vLLM's CPU build and with llama.cpp.

The server runs under `tagparse.llm.watchdog`, the leader of its own process group, which takes
the whole tree (vLLM's API server, engine core and workers) down when this process dies, even by
SIGKILL.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import httpx

from tagparse.errors import TagparseError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


WATCHDOG = "tagparse.llm.watchdog"


class ManagedServer:
    """A server process we own: started under a watchdog leading its own process group, stopped
    with that group.

    Its output goes to a log file whose tail is shown when the server fails to start.
    """

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        *,
        host: str = "127.0.0.1",
        name: str = "server",
        startup_timeout: float = 900.0,
        env: dict[str, str] | None = None,
    ):
        self.command = [str(c) for c in command]
        self.name = name
        self.base_url = f"http://{host}:{port}/v1"
        self.startup_timeout = startup_timeout
        self.env = env
        self.log_path: Path | None = None
        self.process: subprocess.Popen | None = None
        self._finalizer = None

    def start(self) -> Self:
        """Launch and block until `/v1/models` answers 200; a one-line error if it never does."""
        if shutil.which(self.command[0]) is None:
            raise TagparseError(f"cannot start {self.name} ({self.command[0]}: no such executable)")
        fd, log = tempfile.mkstemp(prefix=f"tagparse-{self.name.split()[0]}-", suffix=".log")
        self.log_path = Path(log)
        with os.fdopen(fd, "wb") as out:
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", WATCHDOG, str(os.getpid()), "--", *self.command],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env={**os.environ, **(self.env or {})},
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 (only prctl, async-signal-safe)
                )
            except OSError as e:
                raise TagparseError(
                    f"cannot start {self.name} ({self.command[0]}: {e.strerror})"
                ) from None
        self._finalizer = weakref.finalize(self, _stop_process, self.process)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise TagparseError(
                    f"{self.name} exited with code {self.process.returncode} while "
                    f"starting; last output: {tail} (full log: {self.log_path})"
                )
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TagparseError(
            f"{self.name} did not answer {self.base_url}/models within "
            f"{self.startup_timeout:.0f}s; see {self.log_path}"
        )

    def log_tail(self, n_chars: int = 400) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text("utf-8", errors="replace")[-n_chars:]
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())

    def stop(self) -> None:
        """Stop the server and its process group (SIGTERM, then SIGKILL after 30 s)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _libc_prctl():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: finalizers alone stop the server
        return None


_PRCTL = _libc_prctl()  # resolved here, in the parent: the forked child only makes the syscall


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, even by SIGKILL (Linux), so that a killed
    `tagparse run` never leaves a server holding GPUs."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_process(process: subprocess.Popen) -> None:
    """SIGTERM the watchdog, which stops the server in order; SIGKILL the group if it hangs."""
    if process.poll() is not None:
        return
    try:
        process.terminate()
        process.wait(30.0)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: pgid == pid, so workers go too
    except ProcessLookupError:
        return
    process.wait(5.0)
