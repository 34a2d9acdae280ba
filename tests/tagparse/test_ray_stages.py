"""The pieces of `--distributor ray` that need no running cluster: the cached-caption digests the
read tasks skip, the one-line error a Ray failure becomes, and `--backend vllm`'s flags as Ray
Data LLM's engine config (vLLM on GPUs cannot run here: only the mapping is checked)."""

from __future__ import annotations

import pytest
from tagparse.db import caption_hash
from tagparse.errors import TagparseError

ray = pytest.importorskip("ray")

from tagparse.ray.inputs import run_failure
from tagparse.ray.source import _is_cached, digests
from tagparse.ray.stages import vllm_processor_config


def test_cached_digests_mark_exactly_the_cached_captions():
    cached = ["a red bus", "two cats", "the sky is blue"]
    table = digests(caption_hash(c) for c in cached)
    assert table.dtype == "S20" and list(table) == sorted(table)
    asked = ["two cats", "a dog", "the sky is blue", "zzz", "a red bus", ""]
    assert _is_cached(table, asked).tolist() == [True, False, True, False, True, False]
    assert _is_cached(digests([]), asked).tolist() == [False] * len(asked)


def test_a_task_s_own_error_comes_back_as_the_user_s_line():
    """A RayTaskError built from a TagparseError (as Ray raises a task's exception)."""
    error = TagparseError("captions.csv: no column 'filename'; pass --key-column NAME")
    wrapped = ray.exceptions.RayTaskError("read", "remote traceback", error).as_instanceof_cause()
    assert isinstance(wrapped, TagparseError) and str(wrapped) != str(error)
    assert str(run_failure(wrapped)) == str(error)


def test_any_other_ray_failure_says_a_rerun_resumes():
    failure = run_failure(ray.exceptions.ActorDiedError())
    assert "re-run the same command to resume" in str(failure)
    assert "\n" not in str(failure)


def test_vllm_flags_become_the_engine_processor_config():
    config = vllm_processor_config(
        "lmsys/vicuna-33b-v1.3",
        tensor_parallel_size=2,
        data_parallel_size=4,
        max_num_seqs=256,
        batch_size=128,
    )
    assert config.model_source == "lmsys/vicuna-33b-v1.3"
    assert config.concurrency == 4  # one engine per data-parallel replica
    assert config.batch_size == 128
    assert config.engine_kwargs["tensor_parallel_size"] == 2
    assert config.engine_kwargs["max_num_seqs"] == 256
    assert config.engine_kwargs["enable_prefix_caching"] is True
