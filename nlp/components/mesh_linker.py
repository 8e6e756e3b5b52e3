"""MeSH ids for chemicals and diseases in abstracts, from the ``models/mesh-cdr`` gazetteer.

The literature pipeline names what abstracts report in MeSH, the vocabulary PubMed indexes with and
BC5CDR's relations are scored in. A ``DRUG``/``DRUG_CLASS`` mention is looked up among chemicals, a
``PROBLEM`` among diseases: by its normalised text, by the long form the abstract defines for it
("puromycin aminonucleoside (PAN)" gives "PAN" its long form), and by a singular of its last word.
A hit appends ``("mesh", id, name, 1.0)`` to ``span._.codes``; a miss leaves the span alone.

A ``PROBLEM`` or ``TEST`` mention that is a chemical and not a disease by name ("cocaine" read as
cocaine use, "caffeine" as a caffeine level) becomes a ``DRUG`` with only its MeSH code: in an
abstract the substance is what is studied. With ``find_chemicals``, a run of up to
:data:`MAX_CHEMICAL_TOKENS` tokens that no mention covers and that spells a chemical of the gazetteer
(at least :data:`MIN_CHEMICAL_CHARS` characters: short forms are defined per abstract) becomes a
``DRUG`` mention too. Built by :mod:`nlp.train.mesh_gazetteer`.
"""

import json
import re
import unicodedata
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span

from nlp.components.lexicon import SPAN_GROUP
from nlp.components.linker import defined_long_forms
from nlp.errors import ModelNotFoundError
from nlp.models import resolve_model_dir

GAZETTEER_FILE = "gazetteer.json"
CATEGORY_OF_LABEL = {"DRUG": "chemical", "DRUG_CLASS": "chemical", "PROBLEM": "disease"}
RELABELLED = frozenset({"PROBLEM", "TEST"})
MAX_CHEMICAL_TOKENS = 4
MIN_CHEMICAL_CHARS = 5
_NON_WORD = re.compile(r"[\W_]+")
_SINGULAR = ((re.compile(r"ies$"), "y"), (re.compile(r"(?<=[^s])s$"), ""))


def mesh_key(text: str) -> str:
    """Lower case, NFKC, every run of punctuation or space one space: "Non-Hodgkin's" -> "non hodgkin s"."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def spelling_key(key: str) -> str:
    """A :func:`mesh_key` with British spellings folded to American: "angio oedema", "hypoglycaemia"
    and "haemorrhage" meet "angio edema", "hypoglycemia" and "hemorrhage"."""
    return key.replace("ae", "e").replace("oe", "e")


class MeshGazetteer:
    """Normalised text -> MeSH id per category, and id -> display name."""

    def __init__(self, folder: Path) -> None:
        path = folder / GAZETTEER_FILE
        if not path.is_file():
            raise ModelNotFoundError(
                f"{path} not found; build it with `python -m nlp.train.mesh_gazetteer --out {folder}`"
            )
        data = json.loads(path.read_text(encoding="utf-8"))
        self.names: dict[str, str] = data["names"]
        self.terms: dict[str, dict[str, str]] = data["terms"]
        self.parents: dict[str, list[str]] = data["parents"]
        self._folded = {
            category: {spelling_key(k): v for k, v in sorted(table.items(), reverse=True)}
            for category, table in self.terms.items()
        }
        self.source = f"model:{folder.name}@{data['version']}"

    def ancestors(self, mesh_id: str) -> set[str]:
        """Every broader disease of ``mesh_id`` in the MeSH trees (empty for chemicals)."""
        found: set[str] = set()
        todo = list(self.parents.get(mesh_id, ()))
        while todo:
            parent = todo.pop()
            if parent not in found:
                found.add(parent)
                todo.extend(self.parents.get(parent, ()))
        return found

    def lookup(self, text: str, category: str) -> str | None:
        """The MeSH id of ``text`` as a ``chemical`` or ``disease``, or None."""
        key = mesh_key(text)
        if key in self.terms[category]:
            return self.terms[category][key]
        folded, table = spelling_key(key), self._folded[category]
        for variant in (folded, *(p.sub(r, folded) for p, r in _SINGULAR)):
            if variant in table:
                return table[variant]
        return None


class MeshLinker:
    """Appends a ``mesh`` code to every chemical or disease mention the gazetteer knows."""

    def __init__(self, model: str, find_chemicals: bool = False) -> None:
        self.gazetteer = MeshGazetteer(resolve_model_dir(model))
        self.find_chemicals = find_chemicals
        self.source = self.gazetteer.source
        self.labels: tuple[str, ...] = ()  # finds no mentions; listed with the models for the fingerprint

    def __call__(self, doc: Doc) -> Doc:
        if SPAN_GROUP not in doc.spans:
            return doc
        long_forms = defined_long_forms(doc)
        spans = list(doc.spans[SPAN_GROUP])
        relabelled = False
        for i, span in enumerate(spans):
            if any(code[0] == "mesh" for code in span._.codes):
                continue
            long_form = long_forms.get((span.start, span.end))
            category = CATEGORY_OF_LABEL.get(span.label_)
            mesh_id = self._lookup(span, category, long_form) if category else None
            if mesh_id is not None:
                span._.codes = (*span._.codes, ("mesh", mesh_id, self.gazetteer.names.get(mesh_id), 1.0))
            elif span.label_ in RELABELLED and (chemical := self._lookup(span, "chemical", long_form)):
                spans[i] = self._as_drug(span, chemical)
                relabelled = True
        found = self._chemicals(doc, spans) if self.find_chemicals else []
        if relabelled or found:
            doc.spans[SPAN_GROUP] = sorted([*spans, *found], key=lambda s: (s.start_char, s.end_char))
        return doc

    def _chemicals(self, doc: Doc, spans: list[Span]) -> list[Span]:
        """Chemicals of the gazetteer that no mention covers, longest first, left to right."""
        covered = [False] * len(doc)
        for span in spans:
            covered[span.start : span.end] = [True] * (span.end - span.start)
        table = self.gazetteer.terms["chemical"]
        found = []
        start = 0
        while start < len(doc):
            for end in range(min(len(doc), start + MAX_CHEMICAL_TOKENS), start, -1):
                if any(covered[start:end]) or not doc[start].is_alpha and not doc[start].like_num:
                    continue
                key = mesh_key(doc[start:end].text)
                if len(key) >= MIN_CHEMICAL_CHARS and key in table and not doc[end - 1].is_punct:
                    drug = Span(doc, start, end, label="DRUG")
                    drug._.source = self.source
                    drug._.codes = (("mesh", table[key], self.gazetteer.names.get(table[key]), 1.0),)
                    found.append(drug)
                    covered[start:end] = [True] * (end - start)
                    start = end - 1
                    break
            start += 1
        return found

    def _as_drug(self, span: Span, mesh_id: str) -> Span:
        drug = Span(span.doc, span.start, span.end, label="DRUG")
        drug._.source = f"{span._.source}+{self.source}"
        drug._.score = span._.score
        drug._.char_range = span._.char_range
        drug._.expansion = span._.expansion
        drug._.codes = (("mesh", mesh_id, self.gazetteer.names.get(mesh_id), 1.0),)
        return drug

    def _lookup(self, span: Span, category: str, long_form: str | None) -> str | None:
        for text in (long_form, span._.expansion, span.text):
            if text and (found := self.gazetteer.lookup(text, category)) is not None:
                return found
        return None


@Language.factory(
    "clinical_mesh_linker",
    default_config={"model": "mesh-cdr", "find_chemicals": False},
    requires=["doc.spans"],
    assigns=["doc.spans", "span._.codes"],
)
def make_clinical_mesh_linker(nlp: Language, name: str, model: str, find_chemicals: bool) -> MeshLinker:
    return MeshLinker(model, find_chemicals)
