"""Abstract-level drug -> reaction pairs: a logistic model over what the whole abstract says of a
chemical and a disease (``models/cid-pairs``, trained by :mod:`nlp.train.cid_pairs`).

A sentence-level relation finds "X-induced Y"; a third of what abstracts report spans sentences
("Cocaine and myocardial infarction. ... Two patients developed chest pain and ST elevation ..."). A
candidate is every (drug concept, disease concept) of one abstract, concepts grouped by MeSH id
(else by text); its features say where and how often each appears, whether a sentence-level relation
joins them and how, whether they share sentences, and whether the disease is a broader term of
another disease in the abstract (BC5CDR, the training data, relates the most specific one).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlp.components.mesh_linker import GAZETTEER_FILE, MeshGazetteer, mesh_key
from nlp.errors import ModelNotFoundError
from nlp.models import resolve_model_dir
from nlp.records import MEDICATION_LABELS, Mention, NoteRecord

MODEL_FILE = "model.json"
FEATURES = (
    "relation_rule",
    "relation_model",
    "relation_count",
    "drug_in_title",
    "reaction_in_title",
    "drug_mentions",
    "reaction_mentions",
    "drug_is_top",
    "drug_share",
    "shared_sentences",
    "nearest_sentence_gap",
    "reaction_negated",
    "reaction_speculative",
    "reaction_is_broader",
    "drug_first_position",
    "reaction_first_position",
    "drug_concepts",
    "reaction_concepts",
    "drug_is_class",
    "drug_coded",
    "reaction_coded",
    "relation_score",
    "drug_is_nearest",
    "reaction_related_elsewhere",
    "drug_related_elsewhere",
    "reaction_cue",
    "both_in_title",
    "top_drug_title_reaction",
)
RELATIVE_FEATURES = (
    "first_stage_logit",
    "below_abstract_best",
    "best_for_reaction",
    "best_for_drug",
    "abstract_candidates",
)
_CUE = re.compile(
    r"\b(?:induc\w*|caus\w*|associated|develop\w*|toxicit\w*|after|following|due to|secondary to|"
    r"adverse|side effects?|complications?|occurr\w*|precipitat\w*|provok\w*)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Candidate:
    """A drug concept and a disease concept of one abstract, their mentions and features."""

    drug_key: str
    reaction_key: str
    drugs: tuple[Mention, ...]
    reactions: tuple[Mention, ...]
    features: tuple[float, ...]


# the code systems that name a concept, most preferred first
NAMING_SYSTEMS = ("mesh", "drugbank", "icd10cm", "hpo")
# systems whose display is a name an analyst would use ("Angioedema"); ICD-10-CM's are billing
# categories ("Angioneurotic edema, initial encounter"), so those concepts keep the text
DISPLAY_SYSTEMS = frozenset({"mesh", "drugbank"})


def concept(m: Mention) -> tuple[str, str]:
    """Grouping key and display name of a mention: its MeSH id (``mesh:D003920``), else another
    code, else its normalised text; the name is a MeSH or DrugBank name, else the text (lower case)."""
    text = m.expansion or m.text
    for system in NAMING_SYSTEMS:
        code = next((c for c in m.codes if c.system == system), None)
        if code is not None:
            name = code.display if system in DISPLAY_SYSTEMS and code.display else text
            return f"{system}:{code.code}", name.lower()
    return f"text:{mesh_key(text)}", text.lower()


def concept_key(m: Mention) -> str:
    """The grouping key of :func:`concept`."""
    return concept(m)[0]


def candidates(
    record: NoteRecord,
    sentences: Sequence[tuple[int, int]],
    *,
    text: str,
    title_end: int,
    broader: dict[str, set[str]] | None = None,
) -> list[Candidate]:
    """Every drug x disease concept pair of an abstract with its :data:`FEATURES`.

    Args:
        record: the abstract's record from the literature pipeline.
        sentences: character spans of its sentences.
        text: the abstract's text.
        title_end: where the title ends.
        broader: MeSH id -> its broader diseases (see :meth:`MeshGazetteer.ancestors`).
    """
    length = max(1, record.text_length or 1)
    by_concept: dict[str, list[Mention]] = defaultdict(list)
    kinds: dict[str, str] = {}
    for m in record.mentions:
        if m.label in MEDICATION_LABELS and m.assertion != "absent":
            kinds.setdefault(concept_key(m), "drug")
        elif m.label == "PROBLEM" and m.subject == "patient":
            kinds.setdefault(concept_key(m), "reaction")
        else:
            continue
        by_concept[concept_key(m)].append(m)
    drugs = {k: v for k, v in by_concept.items() if kinds[k] == "drug"}
    reactions = {k: v for k, v in by_concept.items() if kinds[k] == "reaction"}
    if not drugs or not reactions:
        return []

    def sentence_index(offset: int) -> int:
        return next((i for i, (a, b) in enumerate(sentences) if a <= offset < b), len(sentences))

    mention_by_id = {m.id: m for m in record.mentions}
    related: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for r in record.relations:
        if r.type == "adverse_reaction" and r.source_id in mention_by_id and r.target_id in mention_by_id:
            key = (concept_key(mention_by_id[r.source_id]), concept_key(mention_by_id[r.target_id]))
            related[key].append((r.method, r.score))
    related_drugs = {d for d, _ in related}
    related_reactions = {r for _, r in related}
    cue_sentences = {i for i, (a, b) in enumerate(sentences) if _CUE.search(text[a:b])}
    reaction_ids = {k.removeprefix("mesh:") for k in reactions if k.startswith("mesh:")}
    broader_in_abstract: set[str] = set()
    for mesh_id in reaction_ids:
        broader_in_abstract |= (broader or {}).get(mesh_id, set()) & reaction_ids
    drug_counts = {k: len(v) for k, v in drugs.items()}
    top_drug = max(drug_counts.values())
    all_drug_mentions = sum(drug_counts.values())
    drug_sentences_of = {k: {sentence_index(m.start) for m in v} for k, v in drugs.items()}
    found = []
    for reaction_key, reaction_mentions in reactions.items():
        reaction_sentences = {sentence_index(m.start) for m in reaction_mentions}
        gaps = {
            k: min(abs(a - b) for a in drug_sentences for b in reaction_sentences)
            for k, drug_sentences in drug_sentences_of.items()
        }
        nearest = min(gaps.values())
        reaction_in_title = any(m.start < title_end for m in reaction_mentions)
        for drug_key, drug_mentions in drugs.items():
            drug_sentences = drug_sentences_of[drug_key]
            found_relations = related.get((drug_key, reaction_key), [])
            methods = [m for m, _ in found_relations]
            gap = gaps[drug_key]
            drug_in_title = any(m.start < title_end for m in drug_mentions)
            features = (
                float(any(m.startswith("rule:") for m in methods)),
                float(any(m.startswith("model:") for m in methods)),
                math.log1p(len(methods)),
                float(drug_in_title),
                float(reaction_in_title),
                math.log1p(len(drug_mentions)),
                math.log1p(len(reaction_mentions)),
                float(len(drug_mentions) == top_drug),
                len(drug_mentions) / all_drug_mentions,
                math.log1p(len(drug_sentences & reaction_sentences)),
                math.log1p(gap),
                float(all(m.assertion == "absent" for m in reaction_mentions)),
                float(all(m.assertion in ("possible", "hypothetical") for m in reaction_mentions)),
                float(reaction_key.removeprefix("mesh:") in broader_in_abstract),
                min(m.start for m in drug_mentions) / length,
                min(m.start for m in reaction_mentions) / length,
                math.log1p(len(drugs)),
                math.log1p(len(reactions)),
                float(all(m.label == "DRUG_CLASS" for m in drug_mentions)),
                float(drug_key.startswith("mesh:")),
                float(reaction_key.startswith("mesh:")),
                max((score for _, score in found_relations), default=0.0),
                float(gap == nearest),
                float(not methods and reaction_key in related_reactions),
                float(not methods and drug_key in related_drugs),
                float(bool(reaction_sentences & cue_sentences)),
                float(drug_in_title and reaction_in_title),
                float(len(drug_mentions) == top_drug and reaction_in_title),
            )
            found.append(
                Candidate(drug_key, reaction_key, tuple(drug_mentions), tuple(reaction_mentions), features)
            )
    return found


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def relative_features(found: Sequence[Candidate], first: np.ndarray) -> np.ndarray:
    """Second-stage features: a candidate's first-stage probability against the abstract's others
    (:data:`RELATIVE_FEATURES`). An abstract mostly reports one or two reactions of its main drug;
    how a pair compares with the abstract's best says more than its probability alone."""
    best_for_reaction: dict[str, float] = defaultdict(float)
    best_for_drug: dict[str, float] = defaultdict(float)
    for c, p in zip(found, first, strict=True):
        best_for_reaction[c.reaction_key] = max(best_for_reaction[c.reaction_key], p)
        best_for_drug[c.drug_key] = max(best_for_drug[c.drug_key], p)
    best = float(first.max()) if len(first) else 0.0
    clipped = np.clip(first, 1e-6, 1 - 1e-6)
    return np.asarray(
        [
            [
                math.log(q / (1 - q)),
                p - best,
                float(p >= best_for_reaction[c.reaction_key]),
                float(p >= best_for_drug[c.drug_key]),
                math.log1p(len(found)),
            ]
            for c, p, q in zip(found, first, clipped, strict=True)
        ],
        dtype=np.float64,
    ).reshape(len(found), len(RELATIVE_FEATURES))


class PairModel:
    """Two logistic regressions: the first over standardised :data:`FEATURES`, the second over
    :func:`relative_features` of the first's probabilities; weights in ``model.json``."""

    def __init__(self, folder: Path) -> None:
        path = folder / MODEL_FILE
        if not path.is_file():
            raise ModelNotFoundError(f"{path} not found; train it with `python -m nlp.train.cid_pairs`")
        spec = json.loads(path.read_text(encoding="utf-8"))
        if tuple(spec["features"]) != FEATURES:
            raise ModelNotFoundError(f"{path} was trained on other features; retrain it")
        self.mean = np.asarray(spec["mean"], dtype=np.float64)
        self.scale = np.asarray(spec["scale"], dtype=np.float64)
        self.weights = np.asarray(spec["weights"], dtype=np.float64)
        self.bias = float(spec["bias"])
        self.relative_weights = np.asarray(spec["relative_weights"], dtype=np.float64)
        self.relative_bias = float(spec["relative_bias"])
        self.threshold = float(spec["threshold"])
        self.source = f"model:{folder.name}@{spec['version']}"
        gazetteer = resolve_model_dir(spec["gazetteer"])
        if not (gazetteer / GAZETTEER_FILE).is_file():
            raise ModelNotFoundError(f"{gazetteer / GAZETTEER_FILE} not found")
        self.gazetteer = MeshGazetteer(gazetteer)
        self._broader: dict[str, set[str]] = {}

    def broader(self, mesh_ids: set[str]) -> dict[str, set[str]]:
        """MeSH id -> broader diseases, for the ids of one abstract (memoised)."""
        for mesh_id in mesh_ids - self._broader.keys():
            self._broader[mesh_id] = self.gazetteer.ancestors(mesh_id)
        return {i: self._broader[i] for i in mesh_ids}

    def score(self, found: Sequence[Candidate]) -> list[float]:
        """The probability that each candidate is a reported drug -> reaction pair."""
        if not found:
            return []
        return [float(p) for p in self.probabilities(found)]

    def first_stage(self, found: Sequence[Candidate]) -> np.ndarray:
        """The first regression's probabilities."""
        x = (np.asarray([c.features for c in found], dtype=np.float64) - self.mean) / self.scale
        return sigmoid(x @ self.weights + self.bias)

    def probabilities(self, found: Sequence[Candidate]) -> np.ndarray:
        """The second regression's probabilities (the model's answer)."""
        z = relative_features(found, self.first_stage(found))
        return sigmoid(z @ self.relative_weights + self.relative_bias)

    def pairs(
        self, record: NoteRecord, sentences: Sequence[tuple[int, int]], *, text: str, title_end: int
    ) -> list[tuple[Candidate, float]]:
        """The candidates of an abstract with their probabilities, best first."""
        mesh_ids = {
            c.code for m in record.mentions if m.label == "PROBLEM" for c in m.codes if c.system == "mesh"
        }
        found = candidates(record, sentences, text=text, title_end=title_end, broader=self.broader(mesh_ids))
        return sorted(zip(found, self.score(found), strict=True), key=lambda cs: -cs[1])


def load_pair_model(model: str = "cid-pairs") -> PairModel:
    """The shipped abstract-level pair model (``models/cid-pairs``) or one at a path."""
    return PairModel(resolve_model_dir(model))
