"""Recall@k over a similarity ranking: the one metric behind top-k accuracy and retrieval.

Top-k classification accuracy is recall@k with the classes as the gallery (one correct item per
query); image->text retrieval is recall@k with an image's several captions as its correct items
(a hit when any of them ranks in the top k, the usual COCO/Flickr30k rule). Both count, per query,
whether the gallery id of its own item appears among the ids of its k most similar gallery items.
A k larger than the gallery counts the whole gallery (every query is then a hit).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

QUERY_CHUNK = 1024
"""Queries scored at a time, so a 25k x 5k similarity matrix is never held whole."""


def hits_at_k(
    sim: torch.Tensor, query_ids: torch.Tensor, gallery_ids: torch.Tensor, ks: Sequence[int]
) -> dict[int, int]:
    """How many queries (rows of `sim` [Q, G]) have an item of their own id (`query_ids` [Q])
    among their top-k gallery items (gallery item j has id `gallery_ids[j]`), for each k."""
    depth = min(max(ks), sim.shape[1])
    top = sim.topk(depth, dim=1).indices
    hit = gallery_ids.to(sim.device)[top] == query_ids.to(sim.device)[:, None]
    first_hit = hit.cumsum(dim=1) > 0
    return {k: int(first_hit[:, min(k, depth) - 1].sum()) for k in ks}


def recall_at_k(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    query_ids: torch.Tensor,
    gallery_ids: torch.Tensor,
    ks: Sequence[int],
) -> dict[int, float]:
    """Recall@k in percent of embedding `queries` [Q, E] against `gallery` [G, E] (dot-product
    similarity), scored `QUERY_CHUNK` queries at a time."""
    totals = dict.fromkeys(ks, 0)
    for start in range(0, len(queries), QUERY_CHUNK):
        part = slice(start, start + QUERY_CHUNK)
        sim = queries[part] @ gallery.T
        for k, n in hits_at_k(sim, query_ids[part], gallery_ids, ks).items():
            totals[k] += n
    return {k: round(100.0 * n / len(queries), 4) for k, n in totals.items()}
