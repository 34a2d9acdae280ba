"""`tagparse run`'s backend, built only when a caption needs parsing: in process or in workers.

A re-run over a fully cached corpus never loads a model (or starts a vLLM server). The parser
hands the run a `tagparse.stream.ParseStream`: the backend's own when it streams (the LLM
backends, in process), else batches of `chunk_size` through `BatchStream`, two per worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from tagparse.backends import backend_factory, backend_spec, build_backend
from tagparse.backends.base import Backend
from tagparse.errors import TagparseError
from tagparse.parentdeath import die_with_parent
from tagparse.parsing import ParseResult, ParserSpec
from tagparse.stream import BatchStream, ParseStream

_worker_backend: Backend | None = None
_worker_error: BaseException | None = None


def _init_worker(name: str, create: Callable[..., Backend], options: dict, parent_pid: int) -> None:
    global _worker_backend, _worker_error
    die_with_parent(parent_pid)  # a SIGKILLed run must not leave workers holding models
    try:
        _worker_backend = build_backend(name, create, options)
    except BaseException as e:  # noqa: BLE001 -- re-raised in the parent by the first task
        _worker_error = e


def _worker_call(method: str, captions: Sequence[str] = ()):
    if _worker_error is not None:
        raise _worker_error
    return _worker_backend.spec if method == "spec" else _worker_backend.parse_batch(captions)


def failed_call(error: BaseException, n: int) -> list[ParseResult]:
    """A backend call that raised: its captions fail, unless the run itself cannot go on."""
    if isinstance(error, TagparseError):
        raise error
    if isinstance(error, BrokenProcessPool):
        raise TagparseError(
            f"a parser worker process died ({error}); re-run the same command to resume"
        ) from None
    return [ParseResult.failure(f"{type(error).__name__}: {error}") for _ in range(n)]


class LazyParser:
    """The backend, built only when a caption needs parsing: in process, or once per worker."""

    def __init__(self, name: str, options: dict, workers: int):
        self.name, self.options, self.workers = name, options, workers
        self.create = backend_factory(name)  # unknown backends and missing extras fail here
        self._local: Backend | None = None
        self._pool: ProcessPoolExecutor | None = None

    def spec(self) -> ParserSpec:
        spec = backend_spec(self.name, **self.options)
        if spec is not None:
            return spec
        if self.workers == 1:
            return self.local_backend().spec
        return self._executor().submit(_worker_call, "spec").result()

    def open_stream(self, chunk_size: int, label: str) -> ParseStream:
        """The request window for this run (see the module doc)."""
        if self.workers > 1:
            return BatchStream(
                self._submit_to_pool, chunk_size, 2 * self.workers, failed_call, label
            )
        backend = self.local_backend()
        open_stream = getattr(backend, "open_stream", None)
        if open_stream is not None:
            return open_stream()
        return BatchStream(self._parse_here, chunk_size, 1, failed_call, label)

    def _submit_to_pool(self, captions: list[str]) -> Future:
        return self._executor().submit(_worker_call, "parse", captions)

    def _parse_here(self, captions: list[str]) -> Future:
        done: Future = Future()
        try:
            done.set_result(self.local_backend().parse_batch(captions))
        except Exception as e:  # noqa: BLE001 -- delivered like a worker's exception
            done.set_exception(e)
        return done

    def local_backend(self) -> Backend:
        """The backend in this process (built once): the parser itself, or, under `--distributor
        ray`, what gives the fingerprint and (`openai`) the checked client the HTTP stage sends
        with."""
        if self._local is None:
            self._local = build_backend(self.name, self.create, self.options)
        return self._local

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: forking a process that holds SQLite handles and model threads is unsafe
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.name, self.create, self.options, os.getpid()),
            )
        return self._pool

    def close(self) -> None:
        """Release workers, and backend resources such as a managed vLLM server, as the run ends."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        release = getattr(self._local, "close", None)
        if release is not None:
            release()
