"""Drug -> adverse-reaction evidence in abstracts, aggregated across them for analysts.

:func:`analyse` runs the ``literature`` pipeline over one abstract and keeps every statement that
ties a drug to a reaction: the pipeline's ``adverse_reaction`` relations (reported associations, with
"may cause" and "possibly induced" flagged *speculative*), and drugs that share a sentence with a
negated reaction ("no hepatotoxicity was observed with X": *negated*, never counted as reported).
A statement from an animal study (MeSH "Animals" without "Humans", or an animal named in its
sentence) is flagged *animal*. :func:`summarize` does this for many abstracts (in worker processes
that exchange these plain results, never Docs) and groups the statements by drug and reaction
(MeSH ids where the gazetteer names them, else the drug or disease code, else the text).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from nlp.components.adr import RELATION
from nlp.errors import InputError
from nlp.literature.model import (
    Abstract,
    AbstractSummary,
    ConceptCode,
    Evidence,
    LiteratureSummary,
    PairSummary,
)
from nlp.literature.pairs import PairModel, concept, load_pair_model
from nlp.literature.readers import ReadFailure
from nlp.pipeline import Pipeline, load, pipeline_id
from nlp.records import MEDICATION_LABELS, Mention, NoteRecord, doc_to_record

log = logging.getLogger(__name__)

PIPELINE = "literature"
SPECULATIVE = frozenset({"possible", "hypothetical"})
PAIR_MODEL = "cid-pairs"
SUMMARY_SENTENCES = 3
_ANIMAL = re.compile(
    r"\b(?:rats?|mice|mouse|murine|rabbits?|dogs?|canine|piglets?|pigs?|porcine|monkeys?|macaques?|"
    r"hamsters?|guinea pigs?|zebrafish|rodents?|sheep|ovine|bovine|cats?|feline|animals?)\b",
    re.IGNORECASE,
)
_FINDING_CUE = re.compile(
    r"\b(?:induced?|associated|caus(?:e[ds]?|ing)|develop(?:ed|ment)|resulted|increase[ds]?|risk|"
    r"incidence|significant(?:ly)?|toxicity|adverse|conclu(?:de[ds]?|sions?)|suggest(?:s|ed)?)\b",
    re.IGNORECASE,
)
_CONCLUSION = re.compile(r"^\s*(?:CONCLUSIONS?|INTERPRETATION|SUMMARY)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    """One drug -> reaction statement of an abstract, with the names it is grouped by."""

    evidence: Evidence
    drug_key: str
    reaction_key: str
    drug_name: str
    reaction_name: str
    drug_codes: tuple[ConceptCode, ...]
    reaction_codes: tuple[ConceptCode, ...]

    @property
    def reported(self) -> bool:
        """Neither negated nor speculative: a reaction the abstract says happened."""
        return not {"negated", "speculative"} & set(self.evidence.flags)


@dataclass(frozen=True)
class ScoredPair:
    """An abstract-level drug x disease candidate and the pair model's probability."""

    drug_key: str
    reaction_key: str
    probability: float
    accepted: bool


@dataclass(frozen=True)
class AbstractAnalysis:
    """What one abstract says, or why it could not be read."""

    abstract: Abstract
    record: NoteRecord | None = None
    sentences: tuple[tuple[int, int], ...] = ()
    statements: tuple[Statement, ...] = ()
    pairs: tuple[ScoredPair, ...] = ()
    summary: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    error: tuple[str, str] | None = None  # (code, message)


def is_animal_study(abstract: Abstract) -> bool:
    """MeSH says animals and not humans."""
    return "Animals" in abstract.mesh_terms and "Humans" not in abstract.mesh_terms


def analyse(pipe: Pipeline, abstract: Abstract, pair_model: PairModel | None = None) -> AbstractAnalysis:
    """The statements, abstract-level pairs and extractive summary of one abstract.

    Args:
        pipe: the ``literature`` pipeline (or another).
        abstract: the abstract.
        pair_model: scores every drug x disease of the abstract; an accepted pair that no sentence
            states becomes a statement too (method ``model:cid-pairs@…``). ``None``: sentences only.

    An abstract the pipeline cannot read comes back with ``error`` set; nothing is raised.
    """
    try:
        doc = pipe.annotate_doc(abstract.text, note_id=abstract.pmid)
    except InputError as exc:
        return AbstractAnalysis(abstract, error=(exc.code, exc.message))
    record = doc_to_record(doc, pipeline=pipe.id)
    sentences = tuple((s.start_char, s.end_char) for s in doc.sents)
    animal_study = is_animal_study(abstract)
    statements = _sentence_statements(abstract, record, sentences, animal_study=animal_study)
    scored: list[ScoredPair] = []
    if pair_model is not None:
        stated = {(s.drug_key, s.reaction_key) for s in statements}
        for candidate, probability in pair_model.pairs(
            record, sentences, text=abstract.text, title_end=len(abstract.title)
        ):
            accepted = probability >= pair_model.threshold
            scored.append(
                ScoredPair(candidate.drug_key, candidate.reaction_key, round(probability, 4), accepted)
            )
            if accepted and (candidate.drug_key, candidate.reaction_key) not in stated:
                drug = min(candidate.drugs, key=lambda m: m.start)
                reaction = min(candidate.reactions, key=lambda m: (abs(m.start - drug.start), m.start))
                statements.append(
                    _statement(
                        abstract, sentences, drug, reaction, probability, pair_model.source, animal_study
                    )
                )
    return AbstractAnalysis(
        abstract,
        record=record,
        sentences=sentences,
        statements=tuple(statements),
        pairs=tuple(scored),
        summary=_extract_summary(abstract.text, sentences, statements, title_end=len(abstract.title)),
        flags=("animal",) if animal_study else (),
    )


def _statement(
    abstract: Abstract,
    sentences: Sequence[tuple[int, int]],
    drug: Mention,
    reaction: Mention,
    score: float,
    method: str,
    animal_study: bool,
) -> Statement:
    """A statement whose evidence is the sentence of the reaction (where the finding is said)."""
    text = abstract.text
    start, end = next(((a, b) for a, b in sentences if a <= reaction.start < b), (0, len(text)))
    sentence = text[start:end]
    flags = []
    if reaction.assertion == "absent" or drug.assertion == "absent":
        flags.append("negated")
    elif reaction.assertion in SPECULATIVE:
        flags.append("speculative")
    if animal_study or _ANIMAL.search(sentence):
        flags.append("animal")
    drug_key, drug_name = concept(drug)
    reaction_key, reaction_name = concept(reaction)
    evidence = Evidence(
        pmid=abstract.pmid,
        sentence=sentence,
        sentence_start=start,
        drug_text=drug.text,
        drug_start=drug.start,
        drug_end=drug.end,
        reaction_text=reaction.text,
        reaction_start=reaction.start,
        reaction_end=reaction.end,
        assertion=reaction.assertion,
        flags=tuple(flags),
        score=round(score, 4),
        method=method,
    )
    return Statement(
        evidence,
        drug_key,
        reaction_key,
        drug_name,
        reaction_name,
        tuple(ConceptCode(c.system, c.code, c.display) for c in drug.codes),
        tuple(ConceptCode(c.system, c.code, c.display) for c in reaction.codes),
    )


def _sentence_statements(
    abstract: Abstract, record: NoteRecord, sentences: Sequence[tuple[int, int]], *, animal_study: bool
) -> list[Statement]:
    """The pipeline's drug -> reaction relations, and drugs sharing a sentence with a negated disease."""
    mentions = {m.id: m for m in record.mentions}
    statements = [
        _statement(
            abstract, sentences, mentions[r.source_id], mentions[r.target_id], r.score, r.method, animal_study
        )
        for r in record.relations
        if r.type == RELATION
    ]
    paired = {(s.evidence.drug_start, s.evidence.reaction_start) for s in statements}
    for sent_start, sent_end in sentences:
        inside = [m for m in record.mentions if sent_start <= m.start < sent_end and m.subject == "patient"]
        # the drug itself may read as negated ("no angioedema was seen with lisinopril")
        for drug in (m for m in inside if m.label in MEDICATION_LABELS):
            for reaction in (m for m in inside if m.label == "PROBLEM" and m.assertion == "absent"):
                if (drug.start, reaction.start) not in paired:
                    statements.append(
                        _statement(
                            abstract, sentences, drug, reaction, 1.0, "rule:negated-in-sentence", animal_study
                        )
                    )
    return statements


def _extract_summary(
    text: str, sentences: Sequence[tuple[int, int]], statements: Sequence[Statement], *, title_end: int
) -> tuple[str, ...]:
    """The abstract's sentences that carry its findings: those stating a reaction, a conclusion, or
    a finding cue with a drug in it; at most :data:`SUMMARY_SENTENCES`, in text order."""
    body = [(a, b) for a, b in sentences if a > title_end and text[a:b].strip()]
    if not body:
        return ()
    scores = []
    for rank, (a, b) in enumerate(body):
        sentence = text[a:b]
        inside = [
            s for s in statements if a <= s.evidence.drug_start < b or a <= s.evidence.reaction_start < b
        ]
        score = 2.0 * sum(s.reported for s in inside) + 0.5 * len(inside)
        score += 1.5 if _CONCLUSION.match(sentence) else 0.0
        score += 1.0 if rank == len(body) - 1 else 0.0
        score += 0.5 * min(2, len(_FINDING_CUE.findall(sentence)))
        scores.append((score, -rank))
    chosen = sorted(range(len(body)), key=lambda i: scores[i], reverse=True)[:SUMMARY_SENTENCES]
    return tuple(text[body[i][0] : body[i][1]].strip() for i in sorted(chosen) if scores[i][0] > 0)


def aggregate(
    analyses: Iterable[AbstractAnalysis], *, pipeline: str, seconds: float = 0.0
) -> LiteratureSummary:
    """Group the statements of many abstracts by drug and reaction; most-reported pairs first.

    An abstract's summary names its reported pairs as the pair table does (the most frequent name
    of each drug and reaction across abstracts)."""
    grouped: dict[tuple[str, str], list[Statement]] = defaultdict(list)
    read: list[tuple[AbstractAnalysis, tuple[tuple[str, str], ...]]] = []
    failed: list[tuple[str, str, str]] = []
    count = 0
    for analysis in analyses:
        count += 1
        if analysis.error is not None:
            failed.append((analysis.abstract.pmid, *analysis.error))
            continue
        for s in analysis.statements:
            grouped[(s.drug_key, s.reaction_key)].append(s)
        reported = dict.fromkeys((s.drug_key, s.reaction_key) for s in analysis.statements if s.reported)
        # keep what the summary needs, not the record
        read.append((dataclasses.replace(analysis, record=None, statements=(), pairs=()), tuple(reported)))
    by_key = {key: _pair(statements) for key, statements in grouped.items()}
    summaries = [
        AbstractSummary(
            pmid=analysis.abstract.pmid,
            title=analysis.abstract.title,
            year=analysis.abstract.year,
            summary=analysis.summary,
            pairs=tuple((by_key[k].drug, by_key[k].reaction) for k in reported),
            flags=analysis.flags,
        )
        for analysis, reported in read
    ]
    pairs = sorted(by_key.values(), key=lambda p: (-p.abstracts, -len(p.pmids), p.drug, p.reaction))
    return LiteratureSummary(
        pipeline=pipeline,
        abstracts=count,
        failed=tuple(failed),
        pairs=tuple(pairs),
        summaries=tuple(summaries),
        seconds=round(seconds, 2),
    )


def _pair(statements: list[Statement]) -> PairSummary:
    def pmids_with(flag: str) -> int:
        return len({s.evidence.pmid for s in statements if flag in s.evidence.flags})

    drug_names = Counter(s.drug_name for s in statements)
    reaction_names = Counter(s.reaction_name for s in statements)
    first = statements[0]
    return PairSummary(
        drug=min(drug_names, key=lambda n: (-drug_names[n], n)),
        reaction=min(reaction_names, key=lambda n: (-reaction_names[n], n)),
        drug_codes=first.drug_codes,
        reaction_codes=first.reaction_codes,
        abstracts=len({s.evidence.pmid for s in statements if s.reported}),
        pmids=tuple(sorted({s.evidence.pmid for s in statements})),
        negated=pmids_with("negated"),
        speculative=pmids_with("speculative"),
        animal=pmids_with("animal"),
        evidence=tuple(
            sorted((s.evidence for s in statements), key=lambda e: (e.pmid, e.drug_start, e.reaction_start))
        ),
    )


_WORKER: tuple[Pipeline, PairModel | None] | None = None


def _init_worker(name: str, pair_model: str | None) -> None:
    global _WORKER
    _WORKER = (load(name).warm_up(), load_pair_model(pair_model) if pair_model else None)


def _analyse_in_worker(abstract: Abstract) -> AbstractAnalysis:
    assert _WORKER is not None
    return analyse(*_WORKER[:1], abstract, _WORKER[1])


def analyse_many(
    abstracts: Iterable[Abstract],
    *,
    pipeline: str | Pipeline = PIPELINE,
    pair_model: str | None = PAIR_MODEL,
    workers: int = 1,
) -> Iterator[AbstractAnalysis]:
    """:func:`analyse` for every abstract, in order; ``workers > 1`` uses that many processes (each
    loads the pipeline once); a loaded pipeline always runs in this process."""
    if workers <= 1 or isinstance(pipeline, Pipeline):
        pipe = pipeline if isinstance(pipeline, Pipeline) else load(pipeline).warm_up()
        model = load_pair_model(pair_model) if pair_model else None
        for abstract in abstracts:
            yield analyse(pipe, abstract, model)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(pipeline, pair_model)) as pool:
        yield from pool.imap(_analyse_in_worker, abstracts, chunksize=4)


def summarize(
    abstracts: Iterable[Abstract | ReadFailure],
    *,
    pipeline: str | Pipeline = PIPELINE,
    pair_model: str | None = PAIR_MODEL,
    workers: int = 1,
    progress: bool = False,
    total: int | None = None,
) -> LiteratureSummary:
    """Drug -> adverse-reaction evidence across ``abstracts``.

    Args:
        abstracts: the abstracts, as :func:`nlp.literature.read_abstracts` reads them from files;
            its failures (records that could not be read) go to ``LiteratureSummary.failed``.
        pipeline: a pipeline name (default ``literature``) or a loaded :class:`Pipeline`.
        pair_model: the abstract-level pair model (``None``: sentence-level statements only).
        workers: processes (each loads the pipeline once); a loaded pipeline runs in this process.
        progress: show a progress bar on stderr.
        total: the number of abstracts, for the progress bar.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    name = pipeline.id if isinstance(pipeline, Pipeline) else pipeline_id(pipeline)
    unreadable: list[ReadFailure] = []

    def readable() -> Iterator[Abstract]:
        for item in abstracts:
            if isinstance(item, ReadFailure):
                unreadable.append(item)
            else:
                yield item

    analyses = tqdm(
        analyse_many(readable(), pipeline=pipeline, pair_model=pair_model, workers=workers),
        total=total,
        unit="abstract",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    summary = aggregate(analyses, pipeline=name)
    return dataclasses.replace(
        summary,
        failed=tuple(f.as_tuple() for f in unreadable) + summary.failed,
        seconds=round(time.perf_counter() - started, 2),
    )
