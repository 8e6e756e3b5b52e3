"""Build the MeSH gazetteer (``models/mesh-cdr``) that names chemicals and diseases in abstracts.

Run ``python -m nlp.train.mesh_gazetteer --out models/mesh-cdr``. Two sources, read in place:

- the BC5CDR **train and validation** splits (never test): every Chemical or Disease mention that
  carries exactly one MeSH id gives its normalised text -> that id; a text seen with several ids keeps
  the most frequent (ties: the smallest id, so the build is deterministic);
- the DisMaNET MeSH disease vocabulary (``../shared/vocab/dismanet_disease_vocab``, trees C and F,
  preferred names and Supplementary Concept Records), with inverted names turned round
  ("Hemorrhage, Cerebral" -> "cerebral hemorrhage"). Corpus mentions win over these names.

Display names: the DisMaNET preferred name where there is one, else the text the corpus used most
often for the id.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

import corpora
from corpora.base import DEFAULT_ROOT
from nlp.components.mesh_linker import GAZETTEER_FILE, MeshGazetteer, mesh_key

log = logging.getLogger(__name__)
DISMANET_DIR = DEFAULT_ROOT.parent / "vocab" / "dismanet_disease_vocab"
CATEGORIES = {"Chemical": "chemical", "DRUG": "chemical", "Disease": "disease", "PROBLEM": "disease"}


def _uninvert(name: str) -> str:
    """'Hemorrhage, Cerebral' -> 'Cerebral Hemorrhage' (one comma only; others are kept as written)."""
    head, sep, tail = name.partition(", ")
    return f"{tail} {head}" if sep and "," not in tail else name


def corpus_terms(
    splits: tuple[str, ...] = ("train", "validation"), corpus_dir: Path | None = None
) -> tuple[dict[str, dict[str, Counter[str]]], dict[str, Counter[str]]]:
    """Normalised mention text -> id counts per category, and id -> surface text counts."""
    terms: dict[str, dict[str, Counter[str]]] = {
        "chemical": defaultdict(Counter),
        "disease": defaultdict(Counter),
    }
    surfaces: dict[str, Counter[str]] = defaultdict(Counter)
    for split in splits:
        for row in corpora.load("bc5cdr", split=split, corpus_dir=corpus_dir):
            for span in row["spans"]:
                category = CATEGORIES.get(span["label"])
                if category is None or len(span["ids"]) != 1:
                    continue
                mesh_id = span["ids"][0].removeprefix("MESH:")
                terms[category][mesh_key(span["text"])][mesh_id] += 1
                surfaces[mesh_id][span["text"]] += 1
    return terms, surfaces


def dismanet_names(
    folder: Path = DISMANET_DIR,
) -> tuple[dict[str, str], dict[str, str], dict[str, list[str]]]:
    """Normalised disease name -> MeSH id, id -> preferred name, and id -> parent ids (a
    Supplementary Concept Record's parent is its descriptor)."""
    keys: dict[str, str] = {}
    names: dict[str, str] = {}
    parents: dict[str, set[str]] = defaultdict(set)
    for file, id_col, name_col, parent_col in (
        ("mesh_descriptors_c_f_tree.tsv", "MESH_ID", "MESH_NAME", "PARENT_MESH_ID"),
        ("mesh_scr.tsv", "MESH_SCR_ID", "MESH_SCR_NAME", "MESH_ID"),
    ):
        with (folder / file).open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                mesh_id, name = row[id_col], row[name_col]
                names.setdefault(mesh_id, name)
                if row[parent_col] and row[parent_col] != mesh_id:
                    parents[mesh_id].add(row[parent_col])
                for variant in {name, _uninvert(name)}:
                    keys.setdefault(mesh_key(variant), mesh_id)
    return keys, names, {k: sorted(v) for k, v in sorted(parents.items())}


def build(
    out: Path,
    *,
    splits: tuple[str, ...] = ("train", "validation"),
    corpus_dir: Path | None = None,
    dismanet_dir: Path = DISMANET_DIR,
) -> dict[str, int]:
    """Write ``out/gazetteer.json``; returns the number of terms per category."""
    terms, surfaces = corpus_terms(splits, corpus_dir=corpus_dir)
    disease_keys, names, parents = dismanet_names(dismanet_dir)
    table: dict[str, dict[str, str]] = {"chemical": {}, "disease": dict(disease_keys)}
    for category, counts in terms.items():
        for key, ids in counts.items():
            if key:
                table[category][key] = min(ids, key=lambda i: (-ids[i], i))
    used = {i for t in table.values() for i in t.values()}
    display = {i: names.get(i) or surfaces[i].most_common(1)[0][0] for i in sorted(used)}
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": 1,
        "sources": [
            f"bc5cdr {'+'.join(splits)} mentions",
            "DisMaNET MeSH disease names and tree (C, F; SCR)",
        ],
        "names": display,
        "parents": parents,
        "terms": {c: dict(sorted(t.items())) for c, t in table.items()},
    }
    (out / GAZETTEER_FILE).write_text(json.dumps(payload, ensure_ascii=False, sort_keys=True) + "\n")
    sizes = {c: len(t) for c, t in table.items()}
    log.info("wrote %s: %s", out / GAZETTEER_FILE, sizes)
    return sizes


def coverage(folder: Path, split: str = "test", corpus_dir: Path | None = None) -> dict[str, dict[str, int]]:
    """How the gazetteer in ``folder`` names the gold mentions of a BC5CDR split (text lookup alone,
    no abbreviation long forms): per category, mentions named ``right``, ``wrong`` or ``unnamed``."""
    gazetteer = MeshGazetteer(folder)
    counts: dict[str, Counter[str]] = {"chemical": Counter(), "disease": Counter()}
    for row in corpora.load("bc5cdr", split=split, corpus_dir=corpus_dir):
        for span in row["spans"]:
            category = CATEGORIES.get(span["label"])
            if category is None or len(span["ids"]) != 1:
                continue
            found = gazetteer.lookup(span["text"], category)
            gold = span["ids"][0].removeprefix("MESH:")
            counts[category]["unnamed" if found is None else "right" if found == gold else "wrong"] += 1
    return {c: {k: n[k] for k in ("right", "wrong", "unnamed")} for c, n in counts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.train.mesh_gazetteer", description=__doc__)
    parser.add_argument("--out", default="models/mesh-cdr", help="model folder to write")
    parser.add_argument(
        "--splits",
        default="train,validation",
        help="BC5CDR splits to read (train alone: validation then stands for unseen text)",
    )
    parser.add_argument("--corpus-dir", type=Path, default=None, help="the BC5CDR folder (default: shared)")
    parser.add_argument("--dismanet-dir", type=Path, default=DISMANET_DIR)
    parser.add_argument(
        "--coverage", metavar="SPLIT", help="do not build: score the gazetteer in --out on a BC5CDR split"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.coverage:
        print(json.dumps(coverage(Path(args.out), args.coverage, args.corpus_dir)))
        return 0
    print(
        json.dumps(
            build(
                Path(args.out),
                splits=tuple(args.splits.split(",")),
                corpus_dir=args.corpus_dir,
                dismanet_dir=args.dismanet_dir,
            )
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
