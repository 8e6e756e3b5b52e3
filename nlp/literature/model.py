"""The literature summary's data model: abstracts in, drug → reaction evidence and summaries out.

Every class is a frozen dataclass of plain values (strings, numbers, tuples), so a summary is
hashable, comparable and turns into JSON with ``to_dict()`` and back with ``from_dict()``.
Offsets are Python code points into ``Abstract.text`` (title, a newline, the abstract).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nlp.errors import InputError

SCHEMA_VERSION = "1.0"
ASSERTIONS = ("present", "possible", "hypothetical", "absent", "historical")
FLAGS = ("negated", "speculative", "animal")


@dataclass(frozen=True)
class Abstract:
    """One PubMed abstract as read from its source file.

    Attributes:
        pmid: PubMed id (any non-empty string for non-PubMed sources).
        title: the article title, whitespace-normalised.
        abstract: the abstract, whitespace-normalised; labelled sections of a structured abstract
            are joined as ``"BACKGROUND: ... METHODS: ..."``, as PubMed prints them.
        journal: the journal title when the source names it.
        year: the publication year when the source gives it.
        mesh_terms: MeSH descriptor names ("Animals", "Humans", "Amiodarone"), without qualifiers.
        publication_types: PubMed publication types ("Case Reports", "Journal Article").
    """

    pmid: str
    title: str
    abstract: str
    journal: str | None = None
    year: int | None = None
    mesh_terms: tuple[str, ...] = ()
    publication_types: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """Title, a newline, abstract: the text every offset points into.

        It has the length of PubTator's ``title + " " + abstract``, so PubTator offsets hold in it.
        """
        return f"{self.title}\n{self.abstract}"

    def to_dict(self) -> dict[str, Any]:
        """The abstract as JSON-able values, keys in field order."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Abstract:
        """Rebuild from ``to_dict()`` output.

        Raises:
            InputError: ``malformed_record`` when a field is missing or of the wrong shape.
        """
        fields = _fields(cls, data)
        fields["mesh_terms"] = tuple(fields.get("mesh_terms", ()))
        fields["publication_types"] = tuple(fields.get("publication_types", ()))
        return cls(**fields)


@dataclass(frozen=True)
class ConceptCode:
    """A code of a normalised concept.

    Attributes:
        system: the vocabulary: ``"mesh"``, ``"icd10cm"``, ``"rxnorm"``, ``"drugbank"`` ...
        code: the code in that vocabulary (``"D000638"``, ``"K71.6"``).
        display: the vocabulary's name for the concept, when known.
    """

    system: str
    code: str
    display: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The code as JSON-able values, keys in field order."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConceptCode:
        """Rebuild from ``to_dict()`` output.

        Raises:
            InputError: ``malformed_record`` when a field is missing or of the wrong shape.
        """
        return cls(**_fields(cls, data))


@dataclass(frozen=True)
class Evidence:
    """One sentence that relates a drug to a reaction.

    Attributes:
        pmid: the abstract it comes from.
        sentence: the sentence text, ``Abstract.text[sentence_start:sentence_start + len(sentence)]``.
        sentence_start: offset of the sentence in ``Abstract.text``.
        drug_text: the drug mention as written.
        drug_start: offset of the drug mention in ``Abstract.text``.
        drug_end: end offset (exclusive) of the drug mention.
        reaction_text: the reaction mention as written.
        reaction_start: offset of the reaction mention in ``Abstract.text``.
        reaction_end: end offset (exclusive) of the reaction mention.
        assertion: one of ``ASSERTIONS``.
        flags: a subset of ``FLAGS``, in that order.
        score: the confidence of the method that found it, 0 to 1.
        method: what found it, ``"model:<name>@<version>"`` or ``"rule:<rule id>"``.

    Raises:
        InputError: ``malformed_record`` for an unknown assertion or flag, or inverted offsets.
    """

    pmid: str
    sentence: str
    sentence_start: int
    drug_text: str
    drug_start: int
    drug_end: int
    reaction_text: str
    reaction_start: int
    reaction_end: int
    assertion: str
    flags: tuple[str, ...]
    score: float
    method: str

    def __post_init__(self) -> None:
        if self.assertion not in ASSERTIONS:
            raise InputError(
                f"PMID {self.pmid}: assertion {self.assertion!r} is not one of {ASSERTIONS}",
                code="malformed_record",
            )
        unknown = set(self.flags) - set(FLAGS)
        if unknown:
            raise InputError(
                f"PMID {self.pmid}: unknown evidence flags {sorted(unknown)}; known: {FLAGS}",
                code="malformed_record",
            )
        if not (0 <= self.drug_start <= self.drug_end and 0 <= self.reaction_start <= self.reaction_end):
            raise InputError(f"PMID {self.pmid}: inverted mention offsets", code="malformed_record")
        if self.sentence_start < 0:
            raise InputError(f"PMID {self.pmid}: negative sentence offset", code="malformed_record")

    def to_dict(self) -> dict[str, Any]:
        """The evidence as JSON-able values, keys in field order."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """Rebuild from ``to_dict()`` output.

        Raises:
            InputError: ``malformed_record`` when a field is missing or of the wrong shape.
        """
        fields = _fields(cls, data)
        fields["flags"] = tuple(fields["flags"])
        return cls(**fields)


@dataclass(frozen=True)
class PairSummary:
    """Everything the abstracts say about one drug → reaction pair.

    Attributes:
        drug: normalised display name of the drug.
        reaction: normalised display name of the reaction.
        drug_codes: codes of the drug (RxNorm, DrugBank, MeSH ...).
        reaction_codes: codes of the reaction (MeSH, ICD-10-CM ...).
        abstracts: PMIDs with at least one reported (not negated, not speculative) statement.
        pmids: all PMIDs with any evidence of the pair, sorted.
        negated: abstracts with a negated statement of the pair.
        speculative: abstracts with a speculative statement of the pair.
        animal: abstracts of animal studies with a statement of the pair.
        evidence: the statements.
    """

    drug: str
    reaction: str
    drug_codes: tuple[ConceptCode, ...]
    reaction_codes: tuple[ConceptCode, ...]
    abstracts: int
    pmids: tuple[str, ...]
    negated: int
    speculative: int
    animal: int
    evidence: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, Any]:
        """The pair as JSON-able values, keys in field order."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairSummary:
        """Rebuild from ``to_dict()`` output.

        Raises:
            InputError: ``malformed_record`` when a field is missing or of the wrong shape.
        """
        fields = _fields(cls, data)
        fields["drug_codes"] = tuple(ConceptCode.from_dict(c) for c in fields["drug_codes"])
        fields["reaction_codes"] = tuple(ConceptCode.from_dict(c) for c in fields["reaction_codes"])
        fields["pmids"] = tuple(fields["pmids"])
        fields["evidence"] = tuple(Evidence.from_dict(e) for e in fields["evidence"])
        return cls(**fields)


@dataclass(frozen=True)
class AbstractSummary:
    """An extractive summary of one abstract.

    Attributes:
        pmid: the abstract.
        title: its title.
        year: its publication year, when known.
        summary: the sentences carrying its main findings, in text order.
        pairs: the (drug, reaction) display names it reports.
        flags: study-level flags, e.g. ``("animal",)``.
    """

    pmid: str
    title: str
    year: int | None
    summary: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    flags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-able values, keys in field order."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AbstractSummary:
        """Rebuild from ``to_dict()`` output.

        Raises:
            InputError: ``malformed_record`` when a field is missing or of the wrong shape.
        """
        fields = _fields(cls, data)
        fields["summary"] = tuple(fields["summary"])
        fields["pairs"] = tuple((drug, reaction) for drug, reaction in fields["pairs"])
        fields["flags"] = tuple(fields["flags"])
        return cls(**fields)


@dataclass(frozen=True)
class LiteratureSummary:
    """The result of summarising a set of abstracts.

    Attributes:
        pipeline: id of the pipeline that read them (name@version).
        abstracts: how many abstracts were read.
        failed: one ``(pmid or source position, error code, message)`` per record that was not used.
        pairs: the drug → reaction pairs, most-reported first.
        summaries: one per abstract, in reading order.
        seconds: wall time of the run.
    """

    pipeline: str
    abstracts: int
    failed: tuple[tuple[str, str, str], ...]
    pairs: tuple[PairSummary, ...]
    summaries: tuple[AbstractSummary, ...]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-able values: ``schema_version`` first, then the fields in order."""
        return {"schema_version": SCHEMA_VERSION, **_to_dict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LiteratureSummary:
        """Rebuild from ``to_dict()`` output (what ``summary.json`` holds).

        Raises:
            InputError: ``malformed_record`` when a field is missing or of the wrong shape, or the
                schema version is not this one.
        """
        version = data.get("schema_version") if isinstance(data, Mapping) else None
        if version != SCHEMA_VERSION:
            raise InputError(
                f"literature summary schema_version {version!r}; this version reads {SCHEMA_VERSION!r}",
                code="malformed_record",
            )
        fields = _fields(cls, {k: v for k, v in data.items() if k != "schema_version"})
        try:
            fields["failed"] = tuple((str(w), str(c), str(m)) for w, c, m in fields["failed"])
            fields["pairs"] = tuple(PairSummary.from_dict(p) for p in fields["pairs"])
            fields["summaries"] = tuple(AbstractSummary.from_dict(s) for s in fields["summaries"])
        except (TypeError, ValueError) as exc:
            raise InputError(f"malformed literature summary: {exc}", code="malformed_record") from exc
        return cls(**fields)


def _to_dict(obj: object) -> dict[str, Any]:
    """Fields in declaration order, nested dataclasses as dicts, tuples as lists."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [plain(item) for item in value]
        return value

    return plain(obj)


def _fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as keyword arguments of ``cls``; a missing required field or an unknown key is an error."""
    if not isinstance(data, Mapping):
        raise InputError(
            f"{cls.__name__}: expected an object, got {type(data).__name__}", code="malformed_record"
        )
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"{cls.__name__}: unknown keys {unknown}", code="malformed_record")
    required = [
        name
        for name, f in known.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise InputError(f"{cls.__name__}: missing keys {missing}", code="malformed_record")
    return dict(data)
