"""A long-lived request loop for `ChatClient`: conversations in one by one, replies out as each
completes.

`ChatClient.complete_all` serves a list and returns when its slowest reply is in: the barrier
`tagparse run` must not have (issue 21). Here one asyncio loop runs on a helper thread for the
whole run, with one connection pool and `concurrency` requests at the server; the caller's thread
submits and collects without waiting for any particular request, and can write to SQLite while
the loop keeps the server busy. The thread is a daemon: a SIGKILLed run leaves no process behind,
and an ended one is closed by `close()`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable

import httpx

from tagparse.llm.client import ChatClient, Reply


class ChatStream:
    """Runs `client.complete` for each submitted conversation; `deliver(tag, reply)` is called on
    the loop's thread as each finishes, or `deliver(tag, exception)` for a mistake that must stop
    the run (a refused key, a wrong URL: `TagparseError`)."""

    def __init__(
        self, client: ChatClient, deliver: Callable[[Hashable, Reply | BaseException], None]
    ):
        self._client, self._deliver = client, deliver
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tagparse-chat", daemon=True
        )
        self._thread.start()
        self._http: httpx.AsyncClient = self._call(self._open)
        self._gate: asyncio.Semaphore = self._call(self._semaphore)

    def submit(self, tag: Hashable, messages: list[dict[str, str]]) -> None:
        """Start one request (it waits for a free slot of `concurrency` inside the loop)."""
        asyncio.run_coroutine_threadsafe(self._one(tag, messages), self._loop)

    def close(self) -> None:
        """Cancel what is still in flight, close the connections, end the thread."""
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _call(self, make_coroutine: Callable):
        return asyncio.run_coroutine_threadsafe(make_coroutine(), self._loop).result()

    async def _open(self) -> httpx.AsyncClient:
        return self._client.http_client()

    async def _semaphore(self) -> asyncio.Semaphore:
        return asyncio.Semaphore(self._client.concurrency)

    async def _one(self, tag: Hashable, messages: list[dict[str, str]]) -> None:
        try:
            async with self._gate:
                reply: Reply | BaseException = await self._client.complete(self._http, messages)
        except asyncio.CancelledError:
            return  # closing: the caller no longer collects
        except Exception as e:  # noqa: BLE001 -- handed to the caller's thread, raised there
            reply = e
        self._deliver(tag, reply)

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._http.aclose()
