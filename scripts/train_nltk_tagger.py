"""Train the perceptron POS tagger that the NLTK backend ships (used when NLTK's own data is
absent).

NLTK's `averaged_perceptron_tagger_eng` cannot be downloaded on every machine, so tagparse ships a
tagger it trains itself: captions are tokenized with NLTK's Treebank tokenizer (what the backend
uses at parse time), tagged with Penn Treebank tags (`token.tag_`) by the spaCy pipeline, and fed
to `nltk.tag.perceptron.PerceptronTagger.train`. Small weights are pruned and the model is saved
as one gzipped JSON file holding NLTK 3.9+'s JSON parameters (weights, tagdict, classes).

    .venv/bin/python scripts/train_nltk_tagger.py \\
        --captions /work/shared/benchmarks/factual/train.csv \\
        --heldout /work/shared/benchmarks/factual/test.csv

See docs/nltk-tagger.md for how the shipped file was made and how well it tags.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import time
from pathlib import Path

import nltk
from nltk.tag.perceptron import PerceptronTagger
from spacy.tokens import Doc
from tagparse.backends.nltk_backend import SHIPPED_TAGGER, tokenize
from tagparse.backends.spacy_backend import create as create_spacy
from tqdm import tqdm


def read_captions(path: Path, limit: int | None) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        captions = [row["caption"] for row in csv.DictReader(f) if row["caption"].strip()]
    return captions[:limit] if limit else captions


def spacy_tagged(captions: list[str], nlp, batch_size: int = 512) -> list[list[tuple[str, str]]]:
    """Treebank tokens of each caption sentence with the Penn tags the spaCy pipeline gives them."""
    docs = [Doc(nlp.vocab, words=tokens) for c in captions for tokens in tokenize(c)]
    with nlp.select_pipes(enable=["tok2vec", "tagger"]):  # Penn tags need no parse
        tagged = list(
            tqdm(
                nlp.pipe(docs, batch_size=batch_size),
                total=len(docs),
                desc="spaCy tagging",
                unit="caption",
            )
        )
    return [[(t.text, t.tag_) for t in doc] for doc in tagged]


def sentence_case_some(sentences: list[list[tuple[str, str]]], share: float) -> None:
    """Capitalize the first word of a random share of sentences, in place: the training captions are
    mostly lowercase, while web captions usually start with a capital ("Tennis players on...")."""
    for sent in sentences:
        word, tag = sent[0]
        if word.islower() and random.random() < share:
            sent[0] = (word.capitalize(), tag)


def prune(weights: dict, threshold: float, digits: int = 3) -> dict:
    """Drop near-zero weights and round the rest: most of the file, little of the accuracy."""
    pruned = {}
    for feature, by_class in weights.items():
        kept = {c: round(w, digits) for c, w in by_class.items() if abs(w) >= threshold}
        if kept:
            pruned[feature] = kept
    return pruned


def accuracy(tagger: PerceptronTagger, sentences: list[list[tuple[str, str]]]) -> float:
    right = total = 0
    for sent in sentences:
        words, gold = zip(*sent)
        right += sum(p == g for (_, p), g in zip(tagger.tag(list(words)), gold))
        total += len(gold)
    return right / total if total else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--captions", type=Path, required=True, help="CSV with a `caption` column")
    ap.add_argument(
        "--heldout", type=Path, default=None, help="CSV of captions to report accuracy on"
    )
    ap.add_argument("--limit", type=int, default=None, help="train on the first N captions only")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument(
        "--threshold", type=float, default=0.5, help="prune weights below this magnitude"
    )
    ap.add_argument("--out", type=Path, default=SHIPPED_TAGGER)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--capitalize-share",
        type=float,
        default=0.5,
        help="share of training sentences whose first word is capitalized",
    )
    args = ap.parse_args()

    random.seed(args.seed)  # PerceptronTagger.train shuffles with the random module
    spacy_backend = create_spacy()  # tagger/parser only; ner and the lemmatizer are off
    sentences = spacy_tagged(read_captions(args.captions, args.limit), spacy_backend.nlp)
    sentence_case_some(sentences, args.capitalize_share)
    t0 = time.perf_counter()
    tagger = PerceptronTagger(load=False)
    tagger.train(sentences, nr_iter=args.iterations)
    print(f"trained on {len(sentences):,} sentences in {time.perf_counter() - t0:.0f} s")

    weights, tagdict, classes = tagger.encode_json_obj()
    weights = prune(weights, args.threshold)
    payload = {
        "format": "nltk-perceptron-json",
        "nltk_version": nltk.__version__,
        "trained_on": f"{args.captions.name} ({len(sentences)} sentences), Penn tags from "
        f"spaCy {spacy_backend.spec.model}",
        "iterations": args.iterations,
        "capitalize_share": args.capitalize_share,
        "prune_threshold": args.threshold,
        "weights": weights,
        "tagdict": tagdict,
        "classes": sorted(classes),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out, "wt", encoding="utf-8", compresslevel=9) as f:
        json.dump(payload, f, separators=(",", ":"), sort_keys=True)
    print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(weights):,} features)")

    if args.heldout:
        heldout = spacy_tagged(read_captions(args.heldout, None), spacy_backend.nlp)
        pruned = PerceptronTagger(load=False)
        pruned.decode_json_params((weights, tagdict, classes))
        print(
            f"held-out token accuracy vs spaCy: unpruned {accuracy(tagger, heldout):.4f}, "
            f"shipped {accuracy(pruned, heldout):.4f}"
        )


if __name__ == "__main__":
    main()
