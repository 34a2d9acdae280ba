"""Score parsed tags against FACTUAL-style gold scene graphs (precision / recall / F1).

The gold-reading rule is fixed so that figures are comparable across parsers and with the
benchmark's README: every subject, and the object of every non-`is` triple, is an object tag; a
1-tuple `( x )` is an object tag; the object of an `is` triple is an attribute tag unless it is a
number. Tags compare case-insensitively, with the last word of object tags singularized on both
sides; scores are set matches per caption, micro-averaged over all gold rows.
"""

from __future__ import annotations

import csv
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tagparse.db import TagsDB, caption_hash
from tagparse.db.damage import damaged_parse, decoded_parse
from tagparse.db.schema import Parser
from tagparse.errors import TagparseError
from tagparse.normalize import NUMBER_WORDS, singularize_head

KINDS = ("objects", "attributes")
_TUPLE = re.compile(r"\(([^()]*)\)")
# Backends whose stored `model` is what `--model` takes (the others store a derived label).
_MODEL_BACKENDS = ("spacy", "openai", "vllm")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True)
class GoldRow:
    caption: str
    objects: frozenset[str]
    attributes: frozenset[str]


@dataclass
class PRF:
    """Micro-averaged set-match counts for one tag kind."""

    tp: int = 0
    n_pred: int = 0
    n_gold: int = 0

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.n_gold if self.n_gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, pred: set[str], gold: set[str]) -> None:
        self.tp += len(pred & gold)
        self.n_pred += len(pred)
        self.n_gold += len(gold)

    def as_dict(self) -> dict:
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "f1": self.f1}


@dataclass
class ScoreReport:
    parser: str
    gold_path: str
    rows: int
    unparsed: int  # gold rows whose caption has no ok parse in the db (scored as empty predictions)
    objects: PRF
    attributes: PRF

    def as_dict(self) -> dict:
        return {
            "parser": self.parser,
            "gold": self.gold_path,
            "rows": self.rows,
            "unparsed": self.unparsed,
            "objects": self.objects.as_dict(),
            "attributes": self.attributes.as_dict(),
        }

    def table(self) -> str:
        lines = [
            f"parser {self.parser} vs {self.gold_path}: {self.rows} gold rows"
            + (f" ({self.unparsed} without a parse, scored as empty)" if self.unparsed else ""),
            f"{'kind':<11}{'P':>7}{'R':>7}{'F1':>7}{'tp':>8}{'pred':>8}{'gold':>8}",
        ]
        for kind in KINDS:
            s: PRF = getattr(self, kind)
            lines.append(
                f"{kind:<11}{s.precision:>7.3f}{s.recall:>7.3f}{s.f1:>7.3f}"
                f"{s.tp:>8}{s.n_pred:>8}{s.n_gold:>8}"
            )
        return "\n".join(lines)


def object_key(tag: str) -> str:
    """Comparison form of an object tag: lowercase, whitespace collapsed, last word singular."""
    return singularize_head(" ".join(tag.lower().split()))


def attribute_key(tag: str) -> str:
    return " ".join(tag.lower().split())


def is_number(word: str) -> bool:
    word = word.strip().lower()
    return bool(_NUMBER.fullmatch(word)) or word in NUMBER_WORDS


def gold_tags(scene_graph: str) -> tuple[set[str], set[str]]:
    """Object and attribute tags (comparison form) of one FACTUAL scene graph string."""
    objects: set[str] = set()
    attributes: set[str] = set()
    if not scene_graph.strip():
        raise ValueError("empty; a gold row needs at least one ( object ) tuple")
    stray = _TUPLE.sub("", scene_graph).strip(" ,\t\r\n")
    if stray:
        raise ValueError(
            f"{stray[:40]!r} is outside any ( ... ) tuple; expected tuples such as "
            "( cat ) , ( cat , is , black )"
        )
    for inner in _TUPLE.findall(scene_graph):
        parts = [p.strip() for p in inner.split(",")]
        if len(parts) == 1:
            objects.add(parts[0])
        elif len(parts) == 3:
            subject, relation, obj = parts
            objects.add(subject)
            if relation.lower() != "is":
                objects.add(obj)
            elif not is_number(obj):
                attributes.add(obj)
        else:
            raise ValueError(f"tuple {inner.strip()!r} has {len(parts)} parts; expected 1 or 3")
    return ({object_key(t) for t in objects if t}, {attribute_key(t) for t in attributes if t})


def read_gold(path: str | Path) -> list[GoldRow]:
    """Read a gold CSV with `caption` and `scene_graph` columns."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"caption", "scene_graph"} - set(reader.fieldnames or [])
            if missing:
                raise TagparseError(
                    f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                    "a gold CSV needs `caption` and `scene_graph`"
                )
            rows = []
            for lineno, rec in enumerate(reader, 2):
                try:
                    objects, attributes = gold_tags(rec["scene_graph"] or "")
                except ValueError as e:
                    raise TagparseError(
                        f"{path}: line {lineno}: bad scene_graph: {e}; fix or remove the row"
                    ) from None
                rows.append(
                    GoldRow(rec["caption"] or "", frozenset(objects), frozenset(attributes))
                )
    except FileNotFoundError:
        raise TagparseError(f"{path}: no such gold file; check the path") from None
    except UnicodeDecodeError:
        raise TagparseError(f"{path}: not UTF-8; save the gold CSV as UTF-8") from None
    except csv.Error as e:
        raise TagparseError(f"{path}: malformed CSV ({e})") from None
    if not rows:
        raise TagparseError(f"{path}: no gold rows")
    return rows


def score_predictions(
    gold: Sequence[GoldRow], predictions: Iterable[tuple[Sequence[str], Sequence[str]] | None]
) -> tuple[PRF, PRF]:
    """Micro P/R/F1 of (objects, attributes) predictions aligned with `gold`; None = no parse."""
    objects, attributes = PRF(), PRF()
    for row, pred in zip(gold, predictions, strict=True):
        pred_objects, pred_attributes = pred or ((), ())
        objects.add({object_key(t) for t in pred_objects}, set(row.objects))
        attributes.add({attribute_key(t) for t in pred_attributes}, set(row.attributes))
    return objects, attributes


def score_db(gold_path: str | Path, db_path: str | Path, parser: str | None = None) -> ScoreReport:
    """Score one parser's cached parses in a tags.db against a gold CSV, rows matched by caption."""
    gold = read_gold(gold_path)
    db = TagsDB.open(db_path, read_only=True)
    spec = db.resolve_parser(parser)
    parses = _ok_parses(db, spec.id, [_hash_variants(r.caption) for r in gold])
    predictions = [
        next((parses[h] for h in _hash_variants(r.caption) if h in parses), None) for r in gold
    ]
    unparsed = sum(p is None for p in predictions)
    if unparsed == len(gold):
        raise TagparseError(
            f"{db_path}: none of the {len(gold)} gold captions has a parse by "
            f"{spec.backend}@{spec.fingerprint[:8]}; parse them first: "
            f"`{run_command(spec, gold_path, db_path)}`"
        )
    objects, attributes = score_predictions(gold, predictions)
    label = (
        f"{spec.backend}" + (f":{spec.model}" if spec.model else "") + f"@{spec.fingerprint[:8]}"
    )
    return ScoreReport(label, str(gold_path), len(gold), unparsed, objects, attributes)


def run_command(spec: Parser, gold_path: str | Path, db_path: str | Path) -> str:
    """The `tagparse run` that parses a gold CSV with the same parser (the gold file has no key
    column, so the caption is the key); shell-quoted so it can be pasted as it is."""
    args = ["tagparse", "run", "--backend", spec.backend]
    if spec.model and spec.backend in _MODEL_BACKENDS:
        args += ["--model", spec.model.split("@")[0]]  # spaCy stores `pipeline@version`
    args += ["--input", str(gold_path), "--key-column", "caption", "--db", str(db_path)]
    return shlex.join(args)


def _hash_variants(caption: str) -> tuple[str, ...]:
    """Hashes a stored caption may have: as written, or with surrounding whitespace stripped."""
    return tuple(dict.fromkeys((caption_hash(caption), caption_hash(caption.strip()))))


def _ok_parses(
    db: TagsDB, parser_id: int, variants: list[tuple[str, ...]]
) -> dict[str, tuple[list, list]]:
    hashes = list({h for v in variants for h in v})
    with db.reader() as r:
        return {
            h: decoded_parse(
                objs,
                attrs,
                lambda problem, h=h: damaged_parse(
                    db.path, r.first_key_of_caption(h), parser_id, h, problem
                ),
            )
            for h, (objs, attrs) in r.ok_parses_among(parser_id, hashes).items()
        }
