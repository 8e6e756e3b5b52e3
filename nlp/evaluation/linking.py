"""Linking accuracy on gold mentions: BC5CDR (Disease, Chemical) and NCBI disease, MeSH/OMIM ids.

The gold mention *text* is linked (gold spans, so linking is measured alone, not NER), with the
candidates restricted to the code system the gold id can be mapped into:

- diseases (house label PROBLEM) → ICD-10-CM through DisMaNET's cross-maps: MeSH descriptor →
  Disease Ontology → ICD-10-CM; MeSH supplementary concepts (``C...``) through their descriptor;
  OMIM ids through DO's OMIM map. Scored at the full code and at the 3-character category
  (E11.9 vs E11 agree at category level).
- chemicals (house label DRUG) → DrugBank. The DrugBank open vocabulary carries no MeSH ids and no
  MeSH chemical vocabulary is available, so the bridge is by name: a chemical MeSH id takes the
  DrugBank ids whose common name or synonym equals (case-insensitively) a mention text annotated
  with that id in the corpus's *training* split. Ids never seen in training stay unmapped.

Mentions with several gold ids (composites, "+" combinations) cannot be one code and are counted
but not scored. Coverage (mappable / single-id mentions) is reported apart from accuracy, which is
over mappable mentions only. The bridges are public data read in place from ``../shared/vocab``.

``python -m nlp.evaluation.linking bc5cdr ncbi_disease --split test`` prints the report as JSON;
``--choose-threshold`` picks the threshold that maximises F1 of "the claimed code is correct"
against "abstain" on the validation split.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import corpora
from nlp import linking
from nlp.errors import ResourceError
from nlp.pipeline import DEFAULT_CACHE_DIR

log = logging.getLogger(__name__)

DEFAULT_VOCAB_DIR = Path(__file__).resolve().parents[3] / "shared" / "vocab"
DISMANET = "dismanet_disease_vocab"
DRUGBANK = "drugbank_open_vocabulary/drugbank_vocabulary.csv"
SYSTEMS = {"PROBLEM": "icd10cm", "DRUG": "drugbank"}
THRESHOLDS = tuple(round(0.5 + 0.01 * i, 2) for i in range(51))

Bridge = dict[str, frozenset[str]]  # gold id ("MESH:D003920", "OMIM:222100") -> our codes


# --------------------------------------------------------------------------- bridges
def _tsv(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise ResourceError(f"vocabulary bridge {path} is missing (see ../shared/vocab/{DISMANET}/SOURCE.md)")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [[cell.strip() for cell in line.rstrip("\r\n").split("\t")] for line in fh]
    return rows[1:]


def disease_bridge(vocab_dir: Path = DEFAULT_VOCAB_DIR) -> Bridge:
    """MeSH (descriptor or supplementary concept) and OMIM ids → ICD-10-CM codes via Disease Ontology."""
    folder = vocab_dir / DISMANET
    do_to_icd: dict[str, set[str]] = defaultdict(set)
    for do_id, icd in _tsv(folder / "do_to_icd10cm.tsv"):
        do_to_icd[do_id].add(icd.rstrip("."))
    bridge: dict[str, set[str]] = defaultdict(set)
    for do_id, mesh in _tsv(folder / "do_to_mesh.tsv"):
        bridge[f"MESH:{mesh}"] |= do_to_icd.get(do_id, set())
    for do_id, omim in _tsv(folder / "do_to_omim.tsv"):
        bridge[f"OMIM:{omim}"] |= do_to_icd.get(do_id, set())
    for scr, _, descriptor in _tsv(folder / "mesh_scr.tsv"):
        bridge[f"MESH:{scr}"] |= bridge.get(f"MESH:{descriptor}", set())
    return {gold: frozenset(codes) for gold, codes in bridge.items() if codes}


def chemical_bridge(
    corpus: str, *, vocab_dir: Path = DEFAULT_VOCAB_DIR, corpus_dir: str | os.PathLike[str] | None = None
) -> Bridge:
    """Chemical MeSH ids → DrugBank ids, by the names the corpus's training split gives each id."""
    path = vocab_dir / DRUGBANK
    if not path.is_file():
        raise ResourceError(f"DrugBank vocabulary {path} is missing (see its SOURCE.md in ../shared/vocab)")
    by_name: dict[str, set[str]] = defaultdict(set)
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            for name in (row["Common name"], *row["Synonyms"].split(" | ")):
                if name.strip():
                    by_name[linking.normalise(name)].add(row["DrugBank ID"])
    label_map = corpora.get_spec(corpus).label_map
    bridge: dict[str, set[str]] = defaultdict(set)
    for doc in corpora.load(corpus, split="train", corpus_dir=corpus_dir):
        for span in doc["spans"]:
            if label_map.get(span["label"]) == "DRUG" and len(span["ids"]) == 1:
                bridge[span["ids"][0]] |= by_name.get(linking.normalise(span["text"]), set())
    return {gold: frozenset(codes) for gold, codes in bridge.items() if codes}


# --------------------------------------------------------------------------- scoring
def same_category(code: str, gold: Iterable[str]) -> bool:
    """``code``'s 3-character ICD-10-CM category is a gold code's, or inside a gold block ("E08-E13")."""
    category = code[:3]
    for g in gold:
        first, _, last = g.partition("-")
        if first[:3] <= category <= (last or first)[:3]:
            return True
    return False


@dataclass
class LabelTally:
    """Counts for one house label.

    ``top`` holds (top-1 score, exact hit, category hit) for each mappable mention with a candidate.
    """

    mentions: int = 0
    single_id: int = 0
    multi_id: int = 0
    mappable: int = 0
    hit_at_1: int = 0
    hit_at_1_category: int = 0
    hit_at_k: int = 0
    hit_at_k_category: int = 0
    top: list[tuple[float, bool, bool]] = field(default_factory=list)

    def add(self, candidates: Sequence[linking.Candidate], gold: frozenset[str]) -> None:
        exact = [c.code in gold for c in candidates]
        category = [same_category(c.code, gold) for c in candidates]
        self.mappable += 1
        self.hit_at_1 += bool(exact[:1] and exact[0])
        self.hit_at_1_category += bool(category[:1] and category[0])
        self.hit_at_k += any(exact)
        self.hit_at_k_category += any(category)
        if candidates:
            self.top.append((candidates[0].score, exact[0], category[0]))

    def claims(self, threshold: float, *, category: bool = False) -> tuple[int, int]:
        """(claimed, correct claims) when only top-1 scores >= ``threshold`` are claimed."""
        claimed = [hit[2] if category else hit[1] for hit in self.top if hit[0] >= threshold]
        return len(claimed), sum(claimed)

    def report(self, threshold: float, system: str) -> dict[str, Any]:
        has_category = system == "icd10cm"
        out: dict[str, Any] = {
            "system": system,
            "mentions": self.mentions,
            "single_id": self.single_id,
            "multi_id": self.multi_id,
            "mappable": self.mappable,
            "coverage": _ratio(self.mappable, self.single_id),
            "accuracy_at_1": _ratio(self.hit_at_1, self.mappable),
            "recall_at_k": _ratio(self.hit_at_k, self.mappable),
            "at_threshold": _prf(*self.claims(threshold), self.mappable),
        }
        if has_category:
            out["accuracy_at_1_category"] = _ratio(self.hit_at_1_category, self.mappable)
            out["recall_at_k_category"] = _ratio(self.hit_at_k_category, self.mappable)
            out["at_threshold_category"] = _prf(*self.claims(threshold, category=True), self.mappable)
        return out


def evaluate_linking(
    corpus: str,
    split: str,
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    cache_dir: Path | None = None,
    vocab_dir: Path = DEFAULT_VOCAB_DIR,
    threshold: float = linking.DEFAULT_THRESHOLD,
    k: int = linking.DEFAULT_K,
) -> dict[str, Any]:
    """Link the gold mentions of ``corpus``/``split`` and score them against the bridged gold ids.

    Args:
        corpus: ``bc5cdr`` or ``ncbi_disease`` (any registered corpus with MeSH/OMIM ids works).
        split: which split to score (choose the threshold on ``validation``, report ``test``).
        corpus_dir: the corpus folder, if not where :func:`corpora.corpus_path` looks.
        cache_dir: the linker's cache (``None``: build it in memory).
        vocab_dir: the folder holding the DisMaNET and DrugBank vocabularies.
        threshold: the claim threshold the ``at_threshold`` figures use.
        k: candidates per mention for recall@k.

    Returns:
        Per house label: mention counts, coverage, accuracy@1, recall@k (and category-level
        figures for ICD-10-CM), precision/recall/F1 of claims at ``threshold``, and a threshold
        sweep; plus timing and KB size.

    Raises:
        ResourceError: a vocabulary bridge is missing from ``vocab_dir``.
    """
    label_map = corpora.get_spec(corpus).label_map
    bridges: dict[str, Bridge] = {}
    if "PROBLEM" in label_map.values():
        bridges["PROBLEM"] = disease_bridge(vocab_dir)
    if "DRUG" in label_map.values():
        bridges["DRUG"] = chemical_bridge(corpus, vocab_dir=vocab_dir, corpus_dir=corpus_dir)
    started = time.perf_counter()
    linker = linking.load(cache_dir)
    load_seconds = time.perf_counter() - started

    tallies = {label: LabelTally() for label in bridges}
    queries: dict[str, list[tuple[str, frozenset[str]]]] = {label: [] for label in bridges}
    for doc in corpora.load(corpus, split=split, corpus_dir=corpus_dir):
        for span in doc["spans"]:
            label = label_map.get(span["label"])
            if label not in tallies:
                continue
            tally = tallies[label]
            tally.mentions += 1
            if len(span["ids"]) > 1:
                tally.multi_id += 1
            elif span["ids"]:
                tally.single_id += 1
                gold = bridges[label].get(span["ids"][0])
                if gold:
                    queries[label].append((span["text"], gold))

    linked = 0
    started = time.perf_counter()
    for label, pairs in queries.items():
        texts = [text for text, _ in pairs]
        found = linker.link(texts, [label] * len(texts), k=k, threshold=0.0, systems={SYSTEMS[label]})
        for (_, gold), candidates in zip(pairs, found, strict=True):
            tallies[label].add(candidates, gold)
        linked += len(texts)
    link_seconds = time.perf_counter() - started
    return {
        "corpus": corpus,
        "split": split,
        "threshold": threshold,
        "k": k,
        "labels": {label: tally.report(threshold, SYSTEMS[label]) for label, tally in tallies.items()},
        "sweep": sweep(tallies.values()),
        "kb": {"concepts": linker.n_concepts, "aliases": linker.n_aliases},
        "load_seconds": round(load_seconds, 2),
        "linked_mentions": linked,
        "ms_per_mention": round(1000 * link_seconds / linked, 3) if linked else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def sweep(tallies: Iterable[LabelTally]) -> list[dict[str, float]]:
    """Pooled precision/recall/F1 of top-1 claims at each threshold in :data:`THRESHOLDS`."""
    tallies = list(tallies)
    mappable = sum(t.mappable for t in tallies)
    rows = []
    for threshold in THRESHOLDS:
        claimed = correct = 0
        for tally in tallies:
            c, ok = tally.claims(threshold)
            claimed += c
            correct += ok
        rows.append({"threshold": threshold, "claimed": claimed, "correct": correct, "mappable": mappable})
    return rows


def choose_threshold(reports: Iterable[dict[str, Any]]) -> tuple[float, float]:
    """The threshold with the best pooled F1 over ``reports``' sweeps (lowest on a tie), and that F1."""
    pooled: dict[float, list[int]] = defaultdict(lambda: [0, 0, 0])
    for report in reports:
        for row in report["sweep"]:
            acc = pooled[row["threshold"]]
            acc[0] += row["claimed"]
            acc[1] += row["correct"]
            acc[2] += row["mappable"]
    best = max(sorted(pooled), key=lambda t: _prf(*pooled[t])["f1"] or 0.0)
    return best, _prf(*pooled[best])["f1"] or 0.0


def _prf(claimed: int, correct: int, mappable: int) -> dict[str, float | int | None]:
    p, r = _ratio(correct, claimed), _ratio(correct, mappable)
    f = None if p is None or r is None or p + r == 0 else round(2 * p * r / (p + r), 4)
    return {"precision": p, "recall": r, "f1": f, "claimed": claimed}


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nlp.evaluation.linking CORPUS... [--split S] [--choose-threshold]``: JSON on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m nlp.evaluation.linking", description=__doc__.split("\n")[0]
    )
    parser.add_argument("corpora", nargs="+", help="bc5cdr, ncbi_disease")
    parser.add_argument("--split", default="test")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--vocab-dir", type=Path, default=DEFAULT_VOCAB_DIR)
    parser.add_argument("--threshold", type=float, default=linking.DEFAULT_THRESHOLD)
    parser.add_argument("--choose-threshold", action="store_true", help="pick it on the validation split")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    split = "validation" if args.choose_threshold else args.split
    reports = [
        evaluate_linking(
            name, split, cache_dir=args.cache_dir, vocab_dir=args.vocab_dir, threshold=args.threshold
        )
        for name in args.corpora
    ]
    out: dict[str, Any] = {"reports": [{k: v for k, v in r.items() if k != "sweep"} for r in reports]}
    if args.choose_threshold:
        threshold, f1 = choose_threshold(reports)
        out["chosen_threshold"] = {"threshold": threshold, "pooled_f1": f1, "split": split}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
