"""Drug -> adverse-reaction evidence from PubMed abstracts, summarised for analysts.

``read_abstracts`` reads PubMed XML, MEDLINE text, PubTator, JSONL and CSV; ``summarize`` runs the
``literature`` pipeline and the abstract-level pair model over them and aggregates the evidence;
``write_report`` writes ``report.html``, ``pairs.csv`` and ``summary.json``::

    from nlp.literature import read_abstracts, summarize, write_report

    summary = summarize(read_abstracts(["pubmed_export.xml"]), workers=2)
    write_report(summary, Path("report"))
"""

from nlp.literature.model import (
    Abstract,
    AbstractSummary,
    ConceptCode,
    Evidence,
    LiteratureSummary,
    PairSummary,
)
from nlp.literature.readers import ReadFailure, read_abstracts
from nlp.literature.report import write_report
from nlp.literature.summarize import analyse, summarize

__all__ = [
    "Abstract",
    "AbstractSummary",
    "ConceptCode",
    "Evidence",
    "LiteratureSummary",
    "PairSummary",
    "ReadFailure",
    "analyse",
    "read_abstracts",
    "summarize",
    "write_report",
]
