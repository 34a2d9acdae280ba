"""`RayInputs`: the run's records read and parsed by Ray Data, handed to the local writer.

Ray reads (`tagparse.ray.source`, one task per input file), the backend stage parses
(`tagparse.ray.stages`), and this driver iterates the output; `tagparse.pipeline`'s writer
commits it in chunks exactly as for a local run (it is the only writer of tags.db). A record
comes with its parse when Ray parsed it (`ParsedRecord`); the writer never sends it again.
It offers what the writer reads of an `InputStream`: progress bytes and the files' warnings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import ray

from tagparse.errors import TagparseError
from tagparse.inputs import InputStream, ParsedRecord
from tagparse.ray.source import CaptionSource, decode_result, digests
from tagparse.ray.stages import Stage


class RayInputs:
    def __init__(
        self,
        stream: InputStream,
        shard: tuple[int, int],
        limit: int | None,
        cached_hashes: Iterable[str],
        stage: Stage,
        block_rows: int,
    ):
        self.total_bytes, self.bytes_read = stream.total_bytes, 0
        self.truncated_captions = self.damaged_shards = 0
        self.warnings: list[str] = []
        self._on_warning = stream.warn
        source = CaptionSource(
            stream.paths, stream.options, shard, ray.put(digests(cached_hashes)), block_rows
        )
        ds = ray.data.read_datasource(source)
        if limit is not None:
            ds = ds.filter(lambda row: row["key"] is not None).limit(limit)
        self._results = stage(ds)

    def __iter__(self) -> Iterator[ParsedRecord]:
        try:
            for batch in self._results.iter_batches(batch_size=None, batch_format="pyarrow"):
                for row in batch.to_pylist():
                    if row["key"] is None:
                        self._note(row)
                        continue
                    result = decode_result(row["result"]) if row["result"] else None
                    yield ParsedRecord(row["key"], row["caption"], row["where"], result)
        except Exception as e:  # noqa: BLE001 -- Ray's failures, made one line
            raise run_failure(e) from None

    def _note(self, row: dict) -> None:
        self.bytes_read += row["bytes"]
        self.truncated_captions += row["truncated"]
        self.damaged_shards += row["damaged"]
        for message in json.loads(row["warnings"]):
            self.warnings.append(message)
            self._on_warning(message)


def run_failure(error: BaseException) -> TagparseError:
    """The user's own error if a task raised one (bad input, a refused API key...), else: Ray's
    retry budget ran out. Ray re-raises a task's exception as a class deriving from both
    `RayTaskError` and the original (whose text is the remote traceback): the original is
    its `cause`."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, TagparseError) and not isinstance(cause, ray.exceptions.RayError):
            return cause
        cause = getattr(cause, "cause", None) or cause.__cause__
    text = str(error).strip()
    first = text.splitlines()[0][:200] if text else ""
    return TagparseError(
        f"the Ray run failed past Ray's retries ({type(error).__name__}: {first}); the "
        "answers committed so far are in the tags.db: re-run the same command to resume"
    )
