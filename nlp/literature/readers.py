"""Read abstracts from PubMed/MEDLINE exports, PubTator files, JSONL and CSV.

Formats (``FORMATS``), chosen by suffix (a ``.gz`` suffix is looked through) or by sniffing a
``.txt`` file's first line:

- ``pubmed-xml``: ``PubmedArticleSet`` (efetch, the annual baseline, "Save: PubMed XML"), streamed
  with ``iterparse``; structured abstracts become ``"LABEL: text LABEL: text"``, inline markup
  (``<i>``, ``<sup>``) is dropped and its text kept. A DTD that declares entities is refused
  before parsing starts (no entity expansion); an external DTD is never fetched.
- ``medline``: MEDLINE text (``.nbib``, "Save: PubMed format" ``.txt``): ``TAG - value`` lines with
  six-space continuation lines, records separated by blank lines.
- ``pubtator``: ``pmid|t|title`` and ``pmid|a|abstract`` lines (annotation lines are ignored).
  Title and abstract are kept byte for byte, so PubTator offsets hold in ``Abstract.text``.
- ``jsonl``: one object per line with ``pmid``, ``title``, ``abstract`` and optionally ``year``,
  ``journal``, ``mesh_terms``, ``publication_types`` (lists, or strings joined by ``;``).
- ``csv``: a header row with the same columns.

Fields are whitespace-normalised (runs of whitespace become one space, ends trimmed) and otherwise
kept as written. A record that cannot be used becomes a ``ReadFailure`` in its place and reading
goes on; only a file that cannot be read at all, or whose format is unknown, raises ``InputError``.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from xml.parsers import expat

from nlp.errors import InputError
from nlp.literature.model import Abstract

log = logging.getLogger(__name__)

FORMATS = ("pubmed-xml", "medline", "pubtator", "jsonl", "csv")
SUFFIX_FORMATS = {
    ".xml": "pubmed-xml",
    ".nbib": "medline",
    ".medline": "medline",
    ".pubtator": "pubtator",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}
REQUIRED_COLUMNS = ("pmid", "title", "abstract")
XML_ROOTS = frozenset({"PubmedArticleSet", "MedlineCitationSet", "PubmedArticle", "MedlineCitation"})
XML_RECORDS = frozenset({"PubmedArticle", "PubmedBookArticle", "MedlineCitation"})
HEAD_BYTES = 65536  # what format sniffing reads of a file; also the XML prolog check's chunk size

_PUBTATOR_LINE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$", re.DOTALL)
_MEDLINE_LINE = re.compile(r"^([A-Z][A-Z0-9]{1,3}) *- ?(.*)$")
_YEAR = re.compile(r"\b(\d{4})\b")


@dataclass(frozen=True)
class ReadFailure:
    """A record that could not be used, in the place it would have been read.

    Attributes:
        where: the record's PMID, or its source position (``"file.jsonl:12"``, ``"file.xml:article 3"``)
            when it has none.
        code: the error code (``malformed_record``, ``empty_text``, ``duplicate_pmid``,
            ``invalid_encoding``, ``nul_byte``, ``lone_surrogate``).
        message: what is wrong and where; never the record's text.
    """

    where: str
    code: str
    message: str

    def as_tuple(self) -> tuple[str, str, str]:
        """``(where, code, message)``: an entry of ``LiteratureSummary.failed``."""
        return (self.where, self.code, self.message)


def read_abstracts(
    paths: Iterable[str | Path], *, fmt: str | None = None
) -> Iterator[Abstract | ReadFailure]:
    """Stream the abstracts of ``paths`` in file order, with a failure in place of each bad record.

    Every path is checked before the first record is read, so a missing file or an unknown format
    fails at once. A PMID already read (from any of the files) is a ``duplicate_pmid`` failure; the
    first copy is kept.

    Args:
        paths: input files, read in the order given.
        fmt: one of ``FORMATS`` for every file; ``None``: by suffix, sniffing ``.txt`` and others.

    Returns:
        An iterator of ``Abstract`` and ``ReadFailure`` items.

    Raises:
        InputError: ``unreadable_input`` for a file that is absent, a directory or unreadable;
            ``unsupported_format`` for an unknown ``fmt`` or a file of no known format;
            ``unsafe_xml`` for XML whose DTD declares entities; ``malformed_record`` for a CSV
            file without the required columns.
    """
    sources = [
        (Path(path), detect_format(path) if fmt is None else _check_format(Path(path), fmt)) for path in paths
    ]
    return _read_sources(sources)


def detect_format(path: str | Path) -> str:
    """The format of a file, from its suffix or (``.txt`` and unknown suffixes) its first line.

    Raises:
        InputError: ``unreadable_input`` or ``unsupported_format`` (see ``read_abstracts``).
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix in SUFFIX_FORMATS:
        return _check_format(path, SUFFIX_FORMATS[suffix])
    head = _head(path)
    first = next((line.strip() for line in head.decode("utf-8", "replace").splitlines() if line.strip()), "")
    first = first.removeprefix("\ufeff")
    if first.startswith("<"):
        sniffed = "pubmed-xml"
    elif _PUBTATOR_LINE.match(first):
        sniffed = "pubtator"
    elif _MEDLINE_LINE.match(first):
        sniffed = "medline"
    elif first.startswith("{"):
        sniffed = "jsonl"
    elif "pmid" in first.lower() and "," in first:
        sniffed = "csv"
    else:
        raise InputError(
            f"{path}: not a known abstract format ({', '.join(FORMATS)}); pass the format",
            code="unsupported_format",
        )
    return _check_format(path, sniffed)


def _check_format(path: Path, fmt: str) -> str:
    """``fmt`` after the checks a file of that format must pass before reading starts."""
    if fmt not in FORMATS:
        raise InputError(
            f"unknown abstract format {fmt!r}; known: {', '.join(FORMATS)}", code="unsupported_format"
        )
    head = _head(path)
    if fmt == "pubmed-xml":
        _check_xml_prolog(path)
    elif fmt == "csv":
        header = next(csv.reader(io.StringIO(head.decode("utf-8-sig", "replace"))), [])
        missing = [c for c in REQUIRED_COLUMNS if c not in {h.strip().lower() for h in header}]
        if missing:
            raise InputError(f"{path}: CSV header lacks the columns {missing}", code="malformed_record")
    return fmt


class _RootReached(Exception):
    """Stops the prolog check at the root element's start tag."""


def _check_xml_prolog(path: Path) -> None:
    """Refuse entity declarations and roots that are not PubMed's, reading only up to the root's start tag.

    Entities can only be declared in the DTD, before the root element, so a file that passes cannot
    make ``iterparse`` expand one.
    """
    roots: list[str] = []

    def on_root(name: str, attributes: dict[str, str]) -> None:
        roots.append(name)
        raise _RootReached

    def on_entity(name: str, *declaration: object) -> None:
        raise InputError(
            f"{path}: the XML declares the entity {name!r} in its DTD; refused", code="unsafe_xml"
        )

    parser = expat.ParserCreate()
    parser.StartElementHandler = on_root
    parser.EntityDeclHandler = on_entity
    try:
        with _open(path) as stream:
            while chunk := stream.read(HEAD_BYTES):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except _RootReached:
        pass
    except expat.ExpatError as exc:
        raise InputError(f"{path}: not XML ({exc})", code="unsupported_format") from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}", code="unreadable_input") from exc
    if not roots or roots[0] not in XML_ROOTS:
        found = f"<{roots[0]}>" if roots else "none"
        raise InputError(
            f"{path}: XML root {found} is not PubMed's ({', '.join(sorted(XML_ROOTS))})",
            code="unsupported_format",
        )


def _read_sources(sources: list[tuple[Path, str]]) -> Iterator[Abstract | ReadFailure]:
    readers = {
        "pubmed-xml": _read_pubmed_xml,
        "medline": _read_medline,
        "pubtator": _read_pubtator,
        "jsonl": _read_jsonl,
        "csv": _read_csv,
    }
    first_seen: dict[str, str] = {}  # PMID -> the file it was first read from
    for path, fmt in sources:
        read = failed = 0
        for item in readers[fmt](path):
            if isinstance(item, Abstract):
                if item.pmid in first_seen:
                    item = _duplicate(item.pmid, path, first_seen[item.pmid])
                else:
                    first_seen[item.pmid] = path.name
            read += isinstance(item, Abstract)
            failed += isinstance(item, ReadFailure)
            yield item
        log.info("%s (%s): %d abstracts, %d failures", path.name, fmt, read, failed)


def _duplicate(pmid: str, path: Path, first: str) -> ReadFailure:
    message = f"{path.name}: PMID {pmid} was already read from {first}; the first copy is kept"
    return ReadFailure(pmid, "duplicate_pmid", message)


def _failure(where: str, code: str, problem: str, pmid: str = "") -> ReadFailure:
    """A failure named by its PMID when known, else its position; the message always gives the position."""
    return ReadFailure(pmid or where, code, f"{where}: {problem}")


# --- one reader per format, each yielding Abstract | ReadFailure in file order ---


def _read_pubmed_xml(path: Path) -> Iterator[Abstract | ReadFailure]:
    with _open(path) as stream:
        depth, count = 0, 0
        root = ET.Element("")
        try:
            for event, elem in ET.iterparse(stream, events=("start", "end")):
                if event == "start":
                    root = elem if depth == 0 else root
                    depth += 1
                    continue
                depth -= 1
                # a record is the root itself or a child of a set (a PubmedArticle's MedlineCitation is not)
                in_set = depth == 1 and root.tag not in XML_RECORDS
                if elem.tag not in XML_RECORDS or not (depth == 0 or in_set):
                    continue
                count += 1
                yield _xml_record(elem, f"{path.name}:article {count}")
                if in_set:
                    root.clear()  # keep memory flat over 100k-article files
        except ET.ParseError as exc:
            line, column = exc.position
            problem = f"XML is not well-formed at column {column}; the rest of the file is skipped"
            yield _failure(f"{path.name}:{line}", "malformed_record", problem)


def _xml_record(elem: ET.Element, where: str) -> Abstract | ReadFailure:
    """An abstract from a ``PubmedArticle``, ``MedlineCitation`` or ``PubmedBookArticle`` element."""
    if elem.tag == "PubmedBookArticle":
        doc = elem.find("BookDocument")
        if doc is None:
            return _failure(where, "malformed_record", "PubmedBookArticle without a BookDocument")
        title = doc.find("ArticleTitle")
        return _abstract(
            where,
            pmid=doc.findtext("PMID"),
            title=_xml_text(title if title is not None else doc.find("Book/BookTitle")),
            abstract=_xml_abstract(doc.find("Abstract")),
            year=_year(doc.findtext("Book/PubDate/Year")),
            publication_types=tuple(_xml_text(t) for t in doc.iterfind("PublicationType")),
        )
    citation = elem.find("MedlineCitation") if elem.tag == "PubmedArticle" else elem
    article = citation.find("Article") if citation is not None else None
    if citation is None or article is None:
        return _failure(where, "malformed_record", f"{elem.tag} without a MedlineCitation/Article")
    pub_date = article.find("Journal/JournalIssue/PubDate")
    year = None if pub_date is None else _year(pub_date.findtext("Year") or pub_date.findtext("MedlineDate"))
    journal_names = (
        _xml_text(article.find("Journal/Title")),
        _xml_text(article.find("Journal/ISOAbbreviation")),
        _xml_text(citation.find("MedlineJournalInfo/MedlineTA")),
    )
    return _abstract(
        where,
        pmid=citation.findtext("PMID"),
        title=_xml_text(article.find("ArticleTitle")),
        abstract=_xml_abstract(article.find("Abstract")),
        journal=next((name for name in journal_names if name), None),
        year=year,
        mesh_terms=tuple(
            _xml_text(d) for d in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")
        ),
        publication_types=tuple(
            _xml_text(t) for t in article.iterfind("PublicationTypeList/PublicationType")
        ),
    )


def _xml_text(elem: ET.Element | None) -> str:
    """All text under ``elem`` (inline markup dropped), whitespace-normalised."""
    return "" if elem is None else _normalise("".join(elem.itertext()))


def _xml_abstract(abstract: ET.Element | None) -> str:
    """The ``AbstractText`` sections, labelled ones as ``"LABEL: text"``, joined by a space."""
    if abstract is None:
        return ""
    sections = []
    for part in abstract.iterfind("AbstractText"):
        text = _xml_text(part)
        label = _normalise(part.get("Label") or "")
        if text:
            sections.append(f"{label}: {text}" if label else text)
    return " ".join(sections)


def _read_medline(path: Path) -> Iterator[Abstract | ReadFailure]:
    fields: list[tuple[str, str]] = []  # (tag, value) in order, continuation lines joined
    start, problem = 0, None  # problem: (error code, message) of the record's first bad line
    for lineno, line in _lines(path):
        ends_record = line is not None and not line.strip()
        starts_record = line is not None and line.startswith("PMID") and _MEDLINE_LINE.match(line)
        if (ends_record or starts_record) and (fields or problem):
            yield _medline_record(f"{path.name}:{start}", fields, problem)
            fields, problem = [], None
        if ends_record:
            continue
        if not fields and not problem:
            start = lineno
        if line is None:
            problem = problem or ("invalid_encoding", f"line {lineno} is not UTF-8")
        elif line[:1] in (" ", "\t") and fields:
            tag, value = fields[-1]
            fields[-1] = (tag, f"{value} {line}")
        elif match := _MEDLINE_LINE.match(line):
            fields.append((match.group(1), match.group(2)))
        else:
            problem = problem or (
                "malformed_record",
                f"line {lineno} is neither 'TAG - value' nor a continuation",
            )
    if fields or problem:
        yield _medline_record(f"{path.name}:{start}", fields, problem)


def _medline_record(
    where: str, fields: list[tuple[str, str]], problem: tuple[str, str] | None
) -> Abstract | ReadFailure:
    values: dict[str, list[str]] = {}
    for tag, value in fields:
        values.setdefault(tag, []).append(_normalise(value))
    pmid = next(iter(values.get("PMID", [])), "")
    if problem:
        return _failure(where, *problem, pmid)
    return _abstract(
        where,
        pmid=pmid,
        title=" ".join(values.get("TI", []) or values.get("BTI", [])),
        abstract=" ".join(values.get("AB", [])),
        journal=next(iter(values.get("JT", []) + values.get("TA", [])), None),
        year=_year(next(iter(values.get("DP", [])), None)),
        mesh_terms=tuple(term.split("/", 1)[0].lstrip("*") for term in values.get("MH", [])),
        publication_types=tuple(values.get("PT", [])),
    )


def _read_pubtator(path: Path) -> Iterator[Abstract | ReadFailure]:
    pmid, title, where = "", "", ""  # the open document: its title line waits for its abstract line
    for lineno, line in _lines(path):
        if line is None:
            yield _failure(f"{path.name}:{lineno}", "invalid_encoding", "not UTF-8")
            continue
        match = _PUBTATOR_LINE.match(line.rstrip("\r\n"))
        if match is None:
            continue  # blank and annotation lines
        doc_id, kind, text = match.groups()
        if kind == "t":
            if pmid:
                yield _failure(where, "malformed_record", "title line without an abstract line", pmid)
            pmid, title, where = doc_id, text, f"{path.name}:{lineno}"
        elif doc_id != pmid:
            yield _failure(
                f"{path.name}:{lineno}", "malformed_record", "abstract line without a title line", doc_id
            )
        else:
            yield _abstract(where, pmid=pmid, title=title, abstract=text, normalise=False)
            pmid = ""
    if pmid:
        yield _failure(where, "malformed_record", "title line without an abstract line", pmid)


def _read_jsonl(path: Path) -> Iterator[Abstract | ReadFailure]:
    for lineno, line in _lines(path):
        where = f"{path.name}:{lineno}"
        if line is None:
            yield _failure(where, "invalid_encoding", "not UTF-8")
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _failure(where, "malformed_record", f"not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            yield _failure(where, "malformed_record", "not a JSON object")
            continue
        yield _mapping_record(obj, where)


def _read_csv(path: Path) -> Iterator[Abstract | ReadFailure]:
    with _open(path) as binary, io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text)
        where = f"{path.name}:1"
        try:
            header = [name.strip().lower() for name in next(reader, [])]
            for row in reader:
                where = f"{path.name}:{reader.line_num}"
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    yield _failure(where, "malformed_record", f"{len(row)} cells for {len(header)} columns")
                    continue
                yield _mapping_record(dict(zip(header, row, strict=True)), where)
        except (csv.Error, UnicodeDecodeError) as exc:
            code = "invalid_encoding" if isinstance(exc, UnicodeDecodeError) else "malformed_record"
            yield _failure(
                where, code, f"{type(exc).__name__} after this row; the rest of the file is skipped"
            )


def _mapping_record(obj: dict[str, Any], where: str) -> Abstract | ReadFailure:
    """An abstract from a JSONL object or a CSV row."""
    missing = [key for key in REQUIRED_COLUMNS if key not in obj]
    if missing:
        return _failure(where, "malformed_record", f"missing {missing}")
    pmid = obj["pmid"]
    if isinstance(pmid, bool) or not isinstance(pmid, str | int):
        return _failure(where, "malformed_record", "'pmid' must be a string or an integer")
    pmid = _normalise(str(pmid))
    fields: dict[str, Any] = {}
    for key in ("title", "abstract", "journal"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            return _failure(where, "malformed_record", f"'{key}' must be a string", pmid)
        fields[key] = value or ""
    fields["journal"] = _normalise(fields["journal"]) or None
    for key in ("mesh_terms", "publication_types"):
        value = obj.get(key) or []
        if isinstance(value, str):
            value = value.split(";")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return _failure(where, "malformed_record", f"'{key}' must be a list of strings", pmid)
        fields[key] = tuple(term for term in map(_normalise, value) if term)
    year = obj.get("year")
    if isinstance(year, str):
        year = int(year) if year.strip().isdigit() else year.strip() or None
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        return _failure(where, "malformed_record", "'year' must be an integer", pmid)
    return _abstract(where, pmid=pmid, year=year, **fields)


def _abstract(
    where: str,
    *,
    pmid: str | None,
    title: str,
    abstract: str,
    journal: str | None = None,
    year: int | None = None,
    mesh_terms: tuple[str, ...] = (),
    publication_types: tuple[str, ...] = (),
    normalise: bool = True,
) -> Abstract | ReadFailure:
    """The abstract, or the failure that its fields are unusable."""
    pmid = _normalise(pmid or "")
    if not pmid:
        return _failure(where, "malformed_record", "record has no PMID")
    if normalise:
        title, abstract = _normalise(title), _normalise(abstract)
    if not (title.strip() or abstract.strip()):
        return _failure(where, "empty_text", f"PMID {pmid} has neither title nor abstract", pmid)
    for value in (title, abstract, journal or "", *mesh_terms, *publication_types):
        if "\x00" in value:
            return _failure(where, "nul_byte", f"PMID {pmid} contains a NUL byte", pmid)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _failure(where, "lone_surrogate", f"PMID {pmid} contains a lone surrogate", pmid)
    return Abstract(pmid, title, abstract, journal, year, mesh_terms, publication_types)


# --- files ---


def _suffix(path: Path) -> str:
    """The lower-case suffix, looking through ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _open(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it ends in ``.gz``."""
    try:
        if path.suffix.lower() == ".gz":
            return cast(BinaryIO, gzip.open(path, "rb"))  # a GzipFile reads like any binary file
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", code="unreadable_input") from exc


def _head(path: Path) -> bytes:
    """The first ``HEAD_BYTES`` bytes (decompressed); the place every missing or unreadable file fails."""
    if path.is_dir():
        raise InputError(f"{path} is a directory; pass the files in it", code="unreadable_input")
    if not path.exists():
        raise InputError(f"{path}: no such file", code="unreadable_input")
    try:
        with _open(path) as stream:
            return stream.read(HEAD_BYTES)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}", code="unreadable_input") from exc


def _lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """``(line number, text)`` per line; ``None`` for a line that is not UTF-8. A leading BOM is dropped."""
    with _open(path) as stream:
        for lineno, raw in enumerate(stream, start=1):
            if lineno == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield lineno, None


def _normalise(text: str) -> str:
    """Runs of whitespace as one space, no leading or trailing whitespace."""
    return " ".join(text.split())


def _year(text: str | None) -> int | None:
    """The first four-digit number of a date (``"2019 Mar 15"``, ``"1998 Dec-1999 Jan"``)."""
    match = _YEAR.search(text or "")
    return int(match.group(1)) if match else None
