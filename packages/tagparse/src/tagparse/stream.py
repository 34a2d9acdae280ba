"""The request window between `tagparse run`'s single writer and a parser backend.

The writer submits captions one at a time (each with a tag of its choosing) and collects
completions in whatever order they finish; it keeps `window` captions outstanding and refills as
each one completes, so no caption waits for the slowest one of a batch (the barrier of issue 21).
Completions arrive on a queue from the backend's own thread (the LLM client's event loop, a
worker pool's callbacks), so the writer can commit a chunk while requests stay in flight.

Backends that stream natively (`--backend openai`/`vllm`) provide `open_stream()`; every other
backend goes through `BatchStream`, which groups captions into `parse_batch` calls.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Protocol

from tagparse.parsing import ParseResult

Completion = tuple[Hashable, ParseResult]


class ParseStream(Protocol):
    """Captions in, `(tag, result)` out as each finishes; see the module doc."""

    window: int  # captions to keep outstanding for the backend to be fully busy

    def submit(self, tag: Hashable, caption: str) -> None:
        """Queue one caption; never blocks on the backend."""
        ...

    def flush(self) -> None:
        """The input has ended: send whatever is held back waiting for company."""
        ...

    def completed(self, timeout: float) -> list[Completion]:
        """The completions so far, waiting up to `timeout` seconds for the first one."""
        ...

    def close(self) -> None: ...


class Completions:
    """A thread-safe inbox of completions; a delivered exception is raised to the reader."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[list[Completion] | BaseException] = queue.SimpleQueue()

    def put(self, items: list[Completion] | BaseException) -> None:
        self._queue.put(items)

    def take(self, timeout: float) -> list[Completion]:
        out: list[Completion] = []
        try:
            item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            while True:
                if isinstance(item, BaseException):
                    raise item
                out.extend(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            return out


class BatchStream:
    """A `ParseStream` over a batch API: `submit_batch(captions) -> Future[list[ParseResult]]`.

    Captions are sent in groups of `batch_size`, at most `max_batches` groups at a time: one for
    an in-process backend (spaCy's `pipe` wants batches; the call runs on the writer's thread),
    two per worker process for a pool (one computing, one queued, so no worker idles).
    `on_error(exception, n)` turns a failed call into `n` results, or raises to stop the run.
    """

    def __init__(
        self,
        submit_batch: Callable[[list[str]], Future],
        batch_size: int,
        max_batches: int,
        on_error: Callable[[BaseException, int], list[ParseResult]],
        label: str,
    ):
        self.window = batch_size * max_batches
        self._submit_batch, self._batch_size = submit_batch, batch_size
        self._on_error, self._label = on_error, label
        self._tags: list[Hashable] = []
        self._captions: list[str] = []
        self._done = Completions()

    def submit(self, tag: Hashable, caption: str) -> None:
        self._tags.append(tag)
        self._captions.append(caption)
        if len(self._captions) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._captions:
            return
        tags, captions = self._tags, self._captions
        self._tags, self._captions = [], []
        future = self._submit_batch(captions)
        future.add_done_callback(lambda f: self._deliver(tags, f))

    def _deliver(self, tags: list[Hashable], future: Future) -> None:
        try:
            try:
                results = future.result()
            except Exception as e:  # noqa: BLE001 -- the policy is the caller's (on_error)
                results = self._on_error(e, len(tags))
            if len(results) != len(tags):
                raise RuntimeError(
                    f"backend {self._label} returned {len(results)} results "
                    f"for {len(tags)} captions"
                )
        except BaseException as e:  # noqa: BLE001 -- raised on the writer's thread by take()
            self._done.put(e)
            return
        self._done.put(list(zip(tags, results)))

    def completed(self, timeout: float) -> list[Completion]:
        return self._done.take(timeout)

    def close(self) -> None:
        """Nothing of its own to release: the pool belongs to the caller."""
