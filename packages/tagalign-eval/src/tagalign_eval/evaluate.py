"""Runs one benchmark: text embeddings once, batched sliding-window inference, confusion matrix on
the device, optional pictures and label maps; returns a `BenchmarkResult`."""

from __future__ import annotations

import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from tagalign_train import distributed
from torch.utils.data import DataLoader
from tqdm import tqdm

from tagalign_eval import vis
from tagalign_eval.datasets.classes import ClassList, builtin_prompt_map, with_protocol_prompts
from tagalign_eval.datasets.loader import SegDataset
from tagalign_eval.errors import EvalError
from tagalign_eval.metrics import ConfusionMatrix, summarize
from tagalign_eval.models import EvalModel
from tagalign_eval.protocols import Protocol
from tagalign_eval.result import BenchmarkResult


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("tagalign-eval", "tagalign-train", "torch", "open_clip_torch", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _collate(batch: list) -> list:
    return batch


class _Items(torch.utils.data.Dataset):
    """The samples of `indices`; a bad file's EvalError is returned, not raised, so it reaches
    the main process as the one-line error (a worker would wrap it in a traceback)."""

    def __init__(self, dataset: SegDataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        try:
            return self.dataset[self.indices[i]]
        except EvalError as exc:
            return exc


def protocol_classes(classes: ClassList, protocol: Protocol) -> ClassList:
    """The benchmark's classes as the protocol prompts them (its prompt map, its background
    prompts); the reported class names stay the benchmark's."""
    prompt_map = builtin_prompt_map(protocol.class_prompts) if protocol.class_prompts else None
    return with_protocol_prompts(classes, prompt_map, protocol.background_prompts)


def evaluate(
    model: EvalModel,
    dataset: SegDataset,
    protocol: Protocol,
    *,
    device: str | torch.device = "cpu",
    images_per_step: int = 2,
    crop_batch: int = 16,
    limit: int | None = None,
    workers: int = 0,
    save_vis: Path | None = None,
    save_pred: Path | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """Evaluate `model` on `dataset`; under torchrun each rank takes a strided share."""
    device = torch.device(device)
    rank, world = distributed.rank_world()
    segmenter = model.segmenter(
        protocol_classes(dataset.classes, protocol), protocol, device=device, crop_batch=crop_batch
    )
    total = len(dataset) if limit is None else min(limit, len(dataset))
    indices = distributed.shard(range(total), rank, world)
    loader = DataLoader(
        _Items(dataset, indices),
        batch_size=images_per_step,
        num_workers=workers,
        collate_fn=_collate,
    )
    confusion = ConfusionMatrix(dataset.num_classes, device)
    bad_files: list[str] = []
    start = time.perf_counter()
    bar = tqdm(
        total=len(indices), desc=dataset.spec.name, unit="img", disable=not progress or rank != 0
    )
    for batch in loader:
        for item in batch:
            if isinstance(item, EvalError):
                raise item
        labels = segmenter.segment([s.image for s in batch])
        for sample, pred in zip(batch, labels):
            gt = torch.from_numpy(sample.mask).to(device)
            if confusion.update(pred, gt):
                bad_files.append(str(dataset.mask_path(sample.stem)))
            _write_pictures(dataset, sample, pred, save_vis, save_pred)
        bar.update(len(batch))
    bar.close()
    elapsed = time.perf_counter() - start
    distributed.all_reduce_sum(confusion.matrix)
    out_of_range: dict[int, int] = {}
    all_bad_files: list[str] = []
    for part, files in distributed.gather_objects((confusion.out_of_range, bad_files)):
        for value, count in part.items():
            out_of_range[value] = out_of_range.get(value, 0) + count
        all_bad_files += files
    names = dataset.classes.names
    return BenchmarkResult(
        benchmark=dataset.spec.name,
        data_root=str(dataset.data_root.resolve()),
        images=total,
        class_source=dataset.classes.source,
        class_names=tuple(names),
        reduce_zero_label=dataset.spec.reduce_zero_label,
        ignore_index=dataset.spec.ignore_index,
        protocol=protocol,
        model={k: v for k, v in model.info.items() if k != "config"},
        model_config=model.info.get("config"),
        clip_blend_applied=not model.is_baseline and protocol.clip_blend > 0,
        metrics=summarize(confusion.matrix).report(names),
        out_of_range_labels=dict(sorted(out_of_range.items())),
        out_of_range_files=tuple(all_bad_files[:20]),
        device=str(device),
        world_size=world,
        seconds=round(elapsed, 3),
        images_per_s=round(total / elapsed, 3) if elapsed > 0 else None,
        versions=package_versions(),
    )


def _write_pictures(dataset, sample, pred, save_vis, save_pred) -> None:
    if save_vis is None and save_pred is None:
        return
    label = pred.cpu().numpy()
    rel = dataset.mask_path(sample.stem).relative_to(dataset.ann_dir)
    if save_pred is not None:
        vis.save(vis.label_file_image(label, dataset.spec), Path(save_pred) / rel)
    if save_vis is not None:
        panel = vis.side_by_side(sample.image, sample.mask, label, dataset.classes.names)
        vis.save(panel, (Path(save_vis) / rel).with_suffix(".png"))
