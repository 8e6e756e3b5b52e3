"""Train the abstract-level pair model (``models/cid-pairs``) on BC5CDR chemical-induced-disease pairs.

Run ``python -m nlp.train.mesh_gazetteer --splits train --out out/mesh-train`` and then
``python -m nlp.train.cid_pairs --gazetteer out/mesh-train --out models/cid-pairs`` (``make
train-cid``). The literature pipeline, naming mentions with a gazetteer built from the train split
alone (so that validation mentions are as unseen as test ones), annotates the BC5CDR train and
validation abstracts; every drug x disease concept pair of an abstract
(:func:`nlp.literature.pairs.candidates`) is an example, positive when its two MeSH ids are a CID
relation of the abstract. Two logistic regressions (scikit-learn, class-balanced, L2; see
:class:`nlp.literature.pairs.PairModel`) are fitted on train; the decision threshold is the one with
the best document-level CID F1 on validation. The
test split is never read. Pairs whose gold relation has no candidate (a missed or unnamed mention)
still count as misses when the threshold is chosen.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from nlp.evaluation.cid import Pairs, bc5cdr_abstracts, score_pairs
from nlp.literature.pairs import (
    FEATURES,
    MODEL_FILE,
    RELATIVE_FEATURES,
    Candidate,
    PairModel,
    candidates,
    relative_features,
    sigmoid,
)
from nlp.literature.summarize import analyse_many
from nlp.pipeline import COMPONENT_CONFIG, Pipeline, load

log = logging.getLogger(__name__)
VERSION = 1


def literature_pipeline(gazetteer: str) -> Pipeline:
    """The literature pipeline, naming mentions with ``gazetteer`` (a model name or folder)."""
    pipe = load("literature")
    config = {**COMPONENT_CONFIG["literature"]["clinical_mesh_linker"], "model": gazetteer}
    pipe.nlp.replace_pipe("clinical_mesh_linker", "clinical_mesh_linker", config=config)
    return pipe.warm_up()


def _examples(
    split: str, pipe: Pipeline, corpus_dir: Path | None, records: Path | None
) -> tuple[list[list[Candidate]], list[Pairs]]:
    """Candidates and gold pairs of every abstract of a split (analyses cached under ``records``)."""
    from nlp.components.mesh_linker import MeshGazetteer
    from nlp.models import resolve_model_dir

    gazetteer = MeshGazetteer(resolve_model_dir("mesh-cdr"))  # the MeSH tree: the same in every build
    abstracts, gold = bc5cdr_abstracts(split, corpus_dir=corpus_dir)
    cache = records / f"{split}.analyses.pkl" if records else None
    if cache is not None and cache.is_file():
        analyses = pickle.loads(cache.read_bytes())
    else:
        analyses = list(analyse_many(abstracts, pipeline=pipe, pair_model=None))
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(pickle.dumps(analyses))
    per_abstract: list[list[Candidate]] = []
    for analysis in analyses:
        if analysis.record is None:
            per_abstract.append([])
            continue
        mesh_ids = {c.code for m in analysis.record.mentions for c in m.codes if c.system == "mesh"}
        per_abstract.append(
            candidates(
                analysis.record,
                analysis.sentences,
                text=analysis.abstract.text,
                title_end=len(analysis.abstract.title),
                broader={i: gazetteer.ancestors(i) for i in mesh_ids},
            )
        )
    return per_abstract, gold


def _matrix(per_abstract: list[list[Candidate]], gold: list[set[tuple[str, str]]]) -> tuple[Any, Any]:
    x = [c.features for found in per_abstract for c in found]
    y = [
        (c.drug_key.removeprefix("mesh:"), c.reaction_key.removeprefix("mesh:")) in pairs
        for found, pairs in zip(per_abstract, gold, strict=True)
        for c in found
    ]
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=0).fit(x, y)
    return model.coef_[0], float(model.intercept_[0])


def _predicted(model: PairModel, found_sets: list[list[Candidate]], threshold: float) -> list[Pairs]:
    """The MeSH pairs the model accepts at ``threshold``, per abstract (as ``evaluate bc5cdr-cid``)."""
    predicted = []
    for found in found_sets:
        probabilities = model.probabilities(found) if found else np.zeros(0)
        predicted.append(
            {
                (f.drug_key.removeprefix("mesh:"), f.reaction_key.removeprefix("mesh:"))
                for f, p in zip(found, probabilities, strict=True)
                if p >= threshold and f.drug_key.startswith("mesh:") and f.reaction_key.startswith("mesh:")
            }
        )
    return predicted


def train(
    out: Path,
    *,
    gazetteer: str = "mesh-cdr",
    c: float = 0.1,
    corpus_dir: Path | None = None,
    records: Path | None = None,
) -> dict[str, Any]:
    """Fit on train, choose the threshold on validation, write ``out/model.json``; returns the report.

    The second stage is fitted on out-of-fold first-stage probabilities (5 folds by abstract), so
    it learns how the first stage ranks pairs it has not seen."""
    from sklearn.model_selection import GroupKFold

    started = time.perf_counter()
    pipe = literature_pipeline(gazetteer)
    train_found, train_gold = _examples("train", pipe, corpus_dir, records)
    val_found, val_gold = _examples("validation", pipe, corpus_dir, records)
    x, y = _matrix(train_found, train_gold)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    x = (x - mean) / scale
    weights, bias = _fit(x, y, c)
    groups = np.concatenate([np.full(len(found), i) for i, found in enumerate(train_found)])
    first = np.zeros(len(y))
    for fit_rows, held_rows in GroupKFold(n_splits=5).split(x, y, groups):
        fold_weights, fold_bias = _fit(x[fit_rows], y[fit_rows], c)
        first[held_rows] = sigmoid(x[held_rows] @ fold_weights + fold_bias)
    offsets = np.cumsum([0, *(len(found) for found in train_found)])
    z = np.concatenate(
        [
            relative_features(found, first[offsets[i] : offsets[i + 1]])
            for i, found in enumerate(train_found)
            if found
        ]
    )
    relative_weights, relative_bias = _fit(z, y, 1.0)
    spec = {
        "version": VERSION,
        "features": list(FEATURES),
        "mean": [round(v, 6) for v in mean],
        "scale": [round(v, 6) for v in scale],
        "weights": [round(v, 6) for v in weights],
        "bias": round(bias, 6),
        "relative_features": list(RELATIVE_FEATURES),
        "relative_weights": [round(v, 6) for v in relative_weights],
        "relative_bias": round(relative_bias, 6),
        "threshold": 0.5,
        "gazetteer": "mesh-cdr",
        "trained_on": f"bc5cdr train (threshold: bc5cdr validation), mentions named by {gazetteer}",
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    model = PairModel(out)  # the threshold is chosen through the code that serves the model
    sweep = {
        round(t, 2): score_pairs(_predicted(model, val_found, t), val_gold)
        for t in np.arange(0.05, 0.99, 0.01)
    }
    spec["threshold"] = threshold = max(sweep, key=lambda t: sweep[t]["F1"])
    (out / MODEL_FILE).write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    report = {
        "model": str(out),
        "train_examples": int(len(y)),
        "train_positives": int(y.sum()),
        "threshold": threshold,
        "validation": sweep[threshold],
        "train": score_pairs(_predicted(model, train_found, threshold), train_gold),
        "weights": dict(zip(FEATURES, (round(w, 3) for w in weights), strict=True)),
        "relative_weights": dict(
            zip(RELATIVE_FEATURES, (round(w, 3) for w in relative_weights), strict=True)
        ),
        "seconds": round(time.perf_counter() - started),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    (out / "training.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.train.cid_pairs", description=__doc__)
    parser.add_argument("--out", default="models/cid-pairs")
    parser.add_argument(
        "--gazetteer",
        default="mesh-cdr",
        help="the MeSH gazetteer the training analyses use: build one from train alone "
        "(mesh_gazetteer --splits train) so that validation, where the threshold is chosen, "
        "stands for unseen text",
    )
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the first stage")
    parser.add_argument("--corpus-dir", type=Path, default=None)
    parser.add_argument(
        "--records", type=Path, default=None, help="cache the pipeline's analyses here (re-runs reuse them)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(
        json.dumps(
            train(
                Path(args.out),
                gazetteer=args.gazetteer,
                c=args.c,
                corpus_dir=args.corpus_dir,
                records=args.records,
            ),
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
