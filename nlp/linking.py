"""Normalise mention text to codes: scispaCy's TF-IDF character 3-gram + HNSW candidate generator.

The knowledge base is made of the same vocabularies as the lexicon (:func:`nlp.terminology.source_entries`):
one concept per code (id ``"system|code"``, e.g. ``"icd10cm|I26.99"``), named by the code's display and
aliased by every term of every source that carries the code. A concept's type is the house label of the
terms that name it (PROBLEM, DRUG ...), and the KB is split into one shard per (label, code system), so a
DRUG mention only ever meets DRUG concepts.

A mention is linked in two steps: an exact (case-insensitive) alias match scores 1.0; mentions longer
than :data:`EXACT_ONLY_CHARS` also go through the approximate index, whose score is the cosine similarity
of the TF-IDF vectors. Character 3-grams say little about 2-3 letter strings ("PE", "MI"), so those are
linked by exact match only. Candidates below the threshold are dropped: no code is better than a wrong one.

Building takes a minute or two (reading the vocabularies, then one HNSW index per shard), so the KB
and indexes are cached under ``<cache_dir>/linker-<key>/``, written to a temporary folder and renamed
into place; loading the cache takes a second or two. A manifest of file hashes is checked on load, and
a cache that fails it is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import joblib
import nmslib
import numpy as np
import scipy.sparse
import sklearn
import srsly
from nmslib.dist import FloatIndex
from scispacy.candidate_generation import CandidateGenerator, LinkerPaths
from scispacy.linking_utils import Entity, KnowledgeBase
from sklearn.feature_extraction.text import TfidfVectorizer

from nlp import terminology
from nlp.checksums import file_sha256
from nlp.terminology import Entry

log = logging.getLogger(__name__)

BUILD_VERSION = 1
# chosen on the BC5CDR + NCBI disease validation splits (see nlp.evaluation.linking)
DEFAULT_THRESHOLD = 0.74
DEFAULT_K = 3
EXACT_ONLY_CHARS = 3
ANN_NEIGHBOURS = 30
# HNSW build and search settings: on this KB (shards of 40-60k aliases) top-1 recall against exact
# search is >= 0.99 for mentions whose best alias scores >= 0.7, and a shard builds in about 20 s
EF_SEARCH = 200
HNSW_PARAMS = {"M": 16, "efConstruction": 100, "post": 0}
_KB_FILE = "kb.msgpack"
_MANIFEST = "manifest.json"
_PRIORITY_STRIDE = 1 << 20
_NO_PREFERENCE = len(terminology.SOURCES) * _PRIORITY_STRIDE


@dataclass(frozen=True)
class Candidate:
    """One code a mention may mean, with the similarity that suggested it."""

    system: str
    code: str
    display: str
    score: float


@dataclass(frozen=True)
class KbConcept:
    """A code of the knowledge base with the aliases that name it.

    ``preferences`` parallels ``aliases``: which source (and how early in it) gave the alias to this
    code, so that a shared alias ("pneumonia") prefers the code its best source gives it.
    """

    concept_id: str
    label: str
    display: str
    aliases: tuple[str, ...]
    preferences: tuple[int, ...]

    @property
    def system(self) -> str:
        return self.concept_id.split("|", 1)[0]


def normalise(text: str) -> str:
    """The form aliases and mentions are compared in: lower case, single spaces."""
    return " ".join(text.lower().split())


def _preference(priority: int, rank: int) -> int:
    """One sortable number for (source priority, rank within the source); lower wins a tie."""
    return priority * _PRIORITY_STRIDE + min(rank, _PRIORITY_STRIDE - 1)


def concepts_from_entries(
    ranked: Iterable[tuple[int, Entry]], abbreviations: Iterable[Entry] = ()
) -> list[KbConcept]:
    """One :class:`KbConcept` per (label, code) from terminology entries.

    A concept's aliases are the terms that carry its code, the preferred name of their concept and
    the code's display, normalised.

    Args:
        ranked: ``(priority, (text, concept, rank))`` as from :func:`nlp.terminology.source_entries`.
        abbreviations: the curated case-sensitive abbreviations (linked case-insensitively here:
            the mention has already been found, so "was" vs "WAS" no longer matters).
    """
    found: dict[tuple[str, str], dict[str, int]] = {}
    displays: dict[tuple[str, str], str] = {}
    for priority, (text, concept, rank) in [*ranked, *((0, entry) for entry in abbreviations)]:
        pref = _preference(priority, rank)
        for system, code, display in concept.codes:
            key = (concept.label, f"{system}|{code}")
            displays.setdefault(key, display)
            aliases = found.setdefault(key, {})
            for alias in (text, concept.preferred, display):
                alias = normalise(alias)
                if alias and pref < aliases.get(alias, _NO_PREFERENCE):
                    aliases[alias] = pref
    return [
        KbConcept(cid, label, displays[(label, cid)], tuple(aliases), tuple(aliases.values()))
        for (label, cid), aliases in sorted(found.items())
    ]


Scored = dict[str, tuple[float, int]]  # concept id -> (score, preference)


class _Shard:
    """The concepts of one (label, code system) with their candidate generator."""

    def __init__(
        self, label: str, system: str, concepts: list[KbConcept], generator: CandidateGenerator
    ) -> None:
        self.label = label
        self.system = system
        self.displays = {c.concept_id: c.display for c in concepts}
        self.generator = generator
        self.preferences: dict[str, dict[str, int]] = {}
        for concept in concepts:
            for alias, pref in zip(concept.aliases, concept.preferences, strict=True):
                self.preferences.setdefault(alias, {})[concept.concept_id] = pref

    def exact(self, mention: str) -> Scored:
        return {cid: (1.0, pref) for cid, pref in self.preferences.get(mention, {}).items()}

    def approximate(self, mentions: list[str]) -> list[Scored]:
        found = []
        for candidates, known in zip(
            self.generator(mentions, ANN_NEIGHBOURS), self._known_weight(mentions), strict=True
        ):
            scored = {}
            for candidate in candidates:
                best = max(candidate.similarities) * known
                if best <= 0.0:  # HNSW returns k neighbours even when they share no 3-gram
                    continue
                top = max(candidate.similarities)
                pref = min(
                    self.preferences[alias][candidate.concept_id]
                    for alias, sim in zip(candidate.aliases, candidate.similarities, strict=True)
                    if sim == top
                )
                scored[candidate.concept_id] = (float(best), pref)
            found.append(scored)
        return found

    def _known_weight(self, mentions: list[str]) -> list[float]:
        """The share of each mention's TF-IDF norm that falls on 3-grams the aliases contain.

        The vectorizer drops 3-grams it never saw, so "seizure xyzzy" would otherwise be as close
        to "seizure" as "seizure" itself. An unseen 3-gram weighs what a 3-gram of document
        frequency 0 would (smoothed idf), and the cosine is scaled as if it were kept.
        """
        vectorizer = self.generator.vectorizer
        analyse = vectorizer.build_analyzer()
        vocabulary, idf = vectorizer.vocabulary_, vectorizer.idf_
        unseen_idf = float(idf.max()) + math.log(2)  # smoothed idf: ln((1+n)/(1+df)) + 1, df 1 -> 0
        weights = []
        for mention in mentions:
            known = unknown = 0.0
            for gram, count in Counter(analyse(mention)).items():
                column = vocabulary.get(gram)
                if column is None:
                    unknown += (count * unseen_idf) ** 2
                else:
                    known += (count * float(idf[column])) ** 2
            weights.append(math.sqrt(known / (known + unknown)) if known else 0.0)
        return weights


def _fit_index(aliases: list[str]) -> tuple[TfidfVectorizer, scipy.sparse.csr_matrix, FloatIndex]:
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), min_df=1, dtype=np.float32)
    vectors = vectorizer.fit_transform(aliases).astype(np.float32).tocsr()
    index = nmslib.init(method="hnsw", space="cosinesimil_sparse", data_type=nmslib.DataType.SPARSE_VECTOR)
    index.addDataPointBatch(vectors)
    index.createIndex(HNSW_PARAMS, print_progress=False)
    index.setQueryTimeParams({"efSearch": EF_SEARCH})
    return vectorizer, vectors, index


def _shard_kb(concepts: list[KbConcept]) -> KnowledgeBase:
    # the display is one of the normalised aliases already (scispaCy adds the canonical name as one)
    entities = [Entity(c.concept_id, normalise(c.display), list(c.aliases), [c.label]) for c in concepts]
    return KnowledgeBase(entities)


def _group(concepts: Iterable[KbConcept]) -> dict[tuple[str, str], list[KbConcept]]:
    groups: dict[tuple[str, str], list[KbConcept]] = {}
    for concept in concepts:
        groups.setdefault((concept.label, concept.system), []).append(concept)
    return dict(sorted(groups.items()))


class Linker:
    """Candidate codes for mention strings, from a KB split by label and code system.

    Made by :func:`build` (in memory) or :func:`load` (cached on disk); safe to share between threads.
    """

    def __init__(self, shards: list[_Shard]) -> None:
        self._shards = shards

    @property
    def n_concepts(self) -> int:
        """Codes in the KB (a code named by terms of two labels counts twice)."""
        return sum(len(s.displays) for s in self._shards)

    @property
    def n_aliases(self) -> int:
        """Distinct alias strings in the indexes (summed over shards)."""
        return sum(len(s.preferences) for s in self._shards)

    def link(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        k: int = DEFAULT_K,
        threshold: float = DEFAULT_THRESHOLD,
        systems: Collection[str] | None = None,
    ) -> list[list[Candidate]]:
        """The best ``k`` codes of each mention's label, best first, scoring at least ``threshold``.

        Args:
            texts: mention strings.
            labels: their house labels (a DRUG mention is only linked to DRUG concepts).
            k: at most this many candidates per mention.
            threshold: candidates scoring below it are dropped (an empty list means "no code").
            systems: only codes of these systems (default: every system).

        Returns:
            One list of candidates per mention, in input order; ties in score go to the code whose
            alias comes from the better source (the lexicon's order: curated, ICD-10-CM, HPO, drugs).
        """
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        mentions = [normalise(t) for t in texts]
        found: list[list[tuple[float, int, str, str]]] = [[] for _ in mentions]
        for shard in self._shards:
            if systems is not None and shard.system not in systems:
                continue
            rows = [i for i, label in enumerate(labels) if label == shard.label and mentions[i]]
            scored = {i: shard.exact(mentions[i]) for i in rows}
            fuzzy = [i for i in rows if len(mentions[i].replace(" ", "")) > EXACT_ONLY_CHARS]
            for i, approximate in zip(fuzzy, shard.approximate([mentions[i] for i in fuzzy]), strict=True):
                scored[i] = approximate | scored[i]  # an exact match keeps its 1.0
            for i, hits in scored.items():
                found[i] += [
                    (min(1.0, round(score, 4)), pref, cid, shard.displays[cid])
                    for cid, (score, pref) in hits.items()
                ]
        results = []
        for ranked in found:
            ranked.sort(key=lambda hit: (-hit[0], hit[1], hit[2]))
            candidates = []
            for score, _, cid, display in ranked[:k]:
                if score >= threshold:
                    system, code = cid.split("|", 1)
                    candidates.append(Candidate(system, code, display, score))
            results.append(candidates)
        return results


def build(concepts: Sequence[KbConcept]) -> Linker:
    """A linker over ``concepts``, built in memory (about a minute for the full vocabularies)."""
    shards = []
    for (label, system), group in _group(concepts).items():
        kb = _shard_kb(group)
        aliases = sorted(kb.alias_to_cuis)
        vectorizer, _, index = _fit_index(aliases)
        generator = CandidateGenerator(
            ann_index=index, tfidf_vectorizer=vectorizer, ann_concept_aliases_list=aliases, kb=kb
        )
        shards.append(_Shard(label, system, group, generator))
    return Linker(shards)


# --------------------------------------------------------------------------- cache
def cache_key(sources: Sequence[str]) -> str:
    """Changes whenever the vocabularies, this builder or the libraries that pickle the index change."""
    parts = [
        terminology.vocabulary_key(sources),
        str(BUILD_VERSION),
        json.dumps(HNSW_PARAMS, sort_keys=True),
        f"sklearn={sklearn.__version__}",
        f"nmslib={nmslib.__version__}",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _save(concepts: Sequence[KbConcept], folder: Path) -> None:
    groups = list(_group(concepts).items())
    srsly.write_msgpack(
        folder / _KB_FILE,
        {
            "shards": [
                {
                    "label": label,
                    "system": system,
                    "concepts": [
                        [c.concept_id, c.display, list(c.aliases), list(c.preferences)] for c in group
                    ],
                }
                for (label, system), group in groups
            ]
        },
    )
    for n, (_, group) in enumerate(groups):
        paths = _shard_paths(folder, n)
        Path(paths.ann_index).parent.mkdir()
        aliases = sorted(_shard_kb(group).alias_to_cuis)
        vectorizer, vectors, index = _fit_index(aliases)
        joblib.dump(vectorizer, paths.tfidf_vectorizer)
        scipy.sparse.save_npz(paths.tfidf_vectors, vectors)
        index.saveIndex(paths.ann_index, save_data=False)
        Path(paths.concept_aliases_list).write_text(json.dumps(aliases), "utf-8")
    manifest = {
        p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()
    }
    (folder / _MANIFEST).write_text(json.dumps(manifest, indent=1), "utf-8")


def _read(folder: Path) -> Linker:
    manifest = json.loads((folder / _MANIFEST).read_text("utf-8"))
    for name, digest in manifest.items():
        if file_sha256(folder / name) != digest:
            raise ValueError(f"{name} does not match its manifest hash")
    data = srsly.read_msgpack(folder / _KB_FILE)
    shards = []
    for n, spec in enumerate(data["shards"]):
        concepts = [
            KbConcept(cid, spec["label"], display, tuple(aliases), tuple(prefs))
            for cid, display, aliases, prefs in spec["concepts"]
        ]
        aliases, vectorizer, index = _shard_paths(folder, n).load(ef_search=EF_SEARCH)
        generator = CandidateGenerator(
            ann_index=index,
            tfidf_vectorizer=vectorizer,
            ann_concept_aliases_list=aliases,
            kb=_shard_kb(concepts),
        )
        shards.append(_Shard(spec["label"], spec["system"], concepts, generator))
    return Linker(shards)


def _shard_paths(folder: Path, n: int) -> LinkerPaths:
    """scispaCy's file layout, one folder per shard."""
    shard = folder / f"shard{n}"
    return LinkerPaths(
        ann_index=str(shard / "nmslib_index.bin"),
        tfidf_vectorizer=str(shard / "tfidf_vectorizer.joblib"),
        tfidf_vectors=str(shard / "tfidf_vectors_sparse.npz"),
        concept_aliases_list=str(shard / "concept_aliases.json"),
    )


_lock = threading.Lock()
_loaded: dict[tuple[str, str], Linker] = {}


def forget() -> None:
    """Drop the in-memory linkers, so the next :func:`load` reads the disk cache (or builds)."""
    with _lock:
        _loaded.clear()


def load(cache_dir: Path | None, *, sources: Sequence[str] = terminology.SOURCES) -> Linker:
    """The linker over ``sources``: from memory, else from ``<cache_dir>/linker-<key>/``, else built.

    Args:
        cache_dir: where the built KB and indexes are kept (``None``: build in memory every time).
        sources: which vocabularies make the KB (see :data:`nlp.terminology.SOURCES`).
    """
    key = cache_key(sources)
    with _lock:
        memo_key = (key, str(cache_dir))
        if memo_key in _loaded:
            return _loaded[memo_key]
        started = time.perf_counter()
        folder = cache_dir / f"linker-{key}" if cache_dir is not None else None
        linker = None
        if folder is not None and folder.exists():
            try:
                linker = _read(folder)
            except Exception as exc:  # a torn, edited or foreign cache: rebuild it
                log.warning(
                    "linker cache %s unreadable (%s: %s); rebuilding", folder, type(exc).__name__, exc
                )
                shutil.rmtree(folder, ignore_errors=True)
        if linker is None:
            concepts = concepts_from_entries(*terminology.source_entries(sources))
            if folder is None:
                linker = build(concepts)
            else:
                _write_atomically(concepts, folder)
                linker = _read(folder)
        log.info(
            "linker %s: %d concepts, %d aliases in %.2fs",
            key,
            linker.n_concepts,
            linker.n_aliases,
            time.perf_counter() - started,
        )
        _loaded[memo_key] = linker
        return linker


def _write_atomically(concepts: Sequence[KbConcept], folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _save(concepts, tmp)
        try:
            tmp.rename(folder)  # atomic: readers never see half a cache
        except OSError:
            if not folder.exists():
                raise
            # another process finished first; its cache is as good as ours
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
