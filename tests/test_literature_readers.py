"""Abstract readers: every input format, bad records as failures, file-level errors, the bundled samples."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from nlp.errors import InputError
from nlp.literature.model import Abstract
from nlp.literature.readers import FORMATS, ReadFailure, detect_format, read_abstracts

SAMPLES = Path(__file__).resolve().parent.parent / "corpora" / "samples_literature"

# the same two records in every format (fictitious PMIDs)
STRUCTURED = Abstract(
    pmid="90000101",
    title="Isoniazid hepatotoxicity in adults: a cohort study.",
    abstract=(
        "BACKGROUND: Isoniazid can injure the liver. "
        "RESULTS: Hepatotoxicity occurred in 3.1% of 1,214 adults (eGFR 60 mL/min/1.73 m2)."
    ),
    journal="Journal of Synthetic Hepatology",
    year=2021,
    mesh_terms=("Humans", "Isoniazid"),
    publication_types=("Journal Article",),
)
PLAIN = Abstract(
    pmid="90000102",
    title="Lisinopril angioedema.",
    abstract="A man taking lisinopril developed angioedema of the tongue.",
    journal="Annals of Fictional Allergy",
    year=2018,
    mesh_terms=("Angioedema", "Humans"),
    publication_types=("Case Reports",),
)

XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle//EN" "https://dtd.nlm.nih.gov/x.dtd">
<PubmedArticleSet>
<PubmedArticle><MedlineCitation>
  <PMID Version="1">90000101</PMID>
  <Article>
    <Journal><JournalIssue><PubDate><Year>2021</Year><Month>Mar</Month></PubDate></JournalIssue>
      <Title>Journal of Synthetic Hepatology</Title>
      <ISOAbbreviation>J Synth Hepatol</ISOAbbreviation></Journal>
    <ArticleTitle><i>Isoniazid</i>   hepatotoxicity in adults:
      a cohort study.</ArticleTitle>
    <Abstract>
      <AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Isoniazid can injure the liver.</AbstractText>
      <AbstractText Label="RESULTS">Hepatotoxicity occurred in 3.1% of 1,214 adults
        (eGFR 60 mL/min/1.73 m<sup>2</sup>).</AbstractText>
      <CopyrightInformation>Not part of the abstract.</CopyrightInformation>
    </Abstract>
    <PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList>
  </Article>
  <MeshHeadingList>
    <MeshHeading><DescriptorName UI="D006801">Humans</DescriptorName></MeshHeading>
    <MeshHeading><DescriptorName UI="D007538">Isoniazid</DescriptorName>
      <QualifierName UI="Q000009">adverse effects</QualifierName></MeshHeading>
  </MeshHeadingList>
</MedlineCitation></PubmedArticle>
<PubmedArticle><MedlineCitation>
  <PMID Version="1">90000102</PMID>
  <Article>
    <Journal><JournalIssue><PubDate><MedlineDate>2018 Nov-Dec</MedlineDate></PubDate></JournalIssue>
      <Title>Annals of Fictional Allergy</Title></Journal>
    <ArticleTitle>Lisinopril angioedema.</ArticleTitle>
    <Abstract>
      <AbstractText>A man taking lisinopril developed angioedema of the tongue.</AbstractText>
    </Abstract>
    <PublicationTypeList><PublicationType>Case Reports</PublicationType></PublicationTypeList>
  </Article>
  <MeshHeadingList>
    <MeshHeading><DescriptorName>Angioedema</DescriptorName></MeshHeading>
    <MeshHeading><DescriptorName>Humans</DescriptorName></MeshHeading>
  </MeshHeadingList>
</MedlineCitation></PubmedArticle>
</PubmedArticleSet>
"""

MEDLINE = """
PMID- 90000101
OWN - NLM
DP  - 2021 Mar
TI  - Isoniazid hepatotoxicity in adults: a cohort
      study.
AB  - BACKGROUND: Isoniazid can injure the liver. RESULTS: Hepatotoxicity occurred in
      3.1% of 1,214 adults (eGFR 60 mL/min/1.73 m2).
JT  - Journal of Synthetic Hepatology
TA  - J Synth Hepatol
PT  - Journal Article
MH  - Humans
MH  - Isoniazid/*adverse effects

PMID- 90000102
DP  - 2018 Nov-Dec
TI  - Lisinopril angioedema.
AB  - A man taking lisinopril developed angioedema of the tongue.
TA  - Ann Fict Allergy
JT  - Annals of Fictional Allergy
PT  - Case Reports
MH  - *Angioedema
MH  - Humans
"""

PUBTATOR = f"""{STRUCTURED.pmid}|t|{STRUCTURED.title}
{STRUCTURED.pmid}|a|{STRUCTURED.abstract}
{STRUCTURED.pmid}\t0\t9\tIsoniazid\tChemical\tD007538

{PLAIN.pmid}|t|{PLAIN.title}
{PLAIN.pmid}|a|{PLAIN.abstract}
"""

JSONL = "\n".join(
    json.dumps(
        {
            "pmid": int(a.pmid),
            "title": a.title,
            "abstract": a.abstract,
            "journal": a.journal,
            "year": a.year,
            "mesh_terms": list(a.mesh_terms),
            "publication_types": list(a.publication_types),
            "doi": "ignored",
        }
    )
    for a in (STRUCTURED, PLAIN)
)

CSV = "pmid,Title,abstract,year,journal,mesh_terms,publication_types\n" + "".join(
    f'{a.pmid},"{a.title}","{a.abstract}",{a.year},{a.journal},{";".join(a.mesh_terms)},'
    f"{';'.join(a.publication_types)}\n"
    for a in (STRUCTURED, PLAIN)
)


def write(path: Path, text: str | bytes) -> Path:
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def read_all(path: Path, fmt: str | None = None) -> list[Abstract | ReadFailure]:
    return list(read_abstracts([path], fmt=fmt))


def outcome(item: Abstract | ReadFailure) -> tuple[str, str]:
    """``(pmid, "ok")`` for an abstract, ``(where, code)`` for a failure."""
    return (item.pmid, "ok") if isinstance(item, Abstract) else (item.where, item.code)


# file name, content, what the file can say (PubTator has titles and abstracts only)
FULL = ("pmid", "title", "abstract", "journal", "year", "mesh_terms", "publication_types")
FORMAT_CASES = [
    ("in.xml", XML, FULL),
    ("in.xml.gz", XML, FULL),
    ("in.nbib", MEDLINE, FULL),
    ("pubmed-export.txt", MEDLINE, FULL),  # "Save: PubMed format" writes .txt: sniffed
    ("in.pubtator", PUBTATOR, ("pmid", "title", "abstract")),
    ("bc5cdr.txt", PUBTATOR, ("pmid", "title", "abstract")),
    ("in.jsonl", JSONL, FULL),
    ("in.csv", CSV, FULL),
]


@pytest.mark.parametrize(("name", "content", "fields"), FORMAT_CASES)
def test_every_format_reads_the_same_abstracts(
    tmp_path: Path, name: str, content: str, fields: tuple
) -> None:
    items = read_all(write(tmp_path / name, content))
    assert all(isinstance(item, Abstract) for item in items), items
    got = [{f: getattr(item, f) for f in fields} for item in items]
    assert got == [{f: getattr(a, f) for f in fields} for a in (STRUCTURED, PLAIN)]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.xml", XML, "pubmed-xml"),
        ("a.nbib", MEDLINE, "medline"),
        ("a.txt", MEDLINE, "medline"),
        ("a.txt", PUBTATOR, "pubtator"),
        ("a.PubTator", PUBTATOR, "pubtator"),
        ("a.txt", JSONL, "jsonl"),
        ("a.ndjson", JSONL, "jsonl"),
        ("a.txt", CSV, "csv"),
        ("a.dat", XML, "pubmed-xml"),
        ("a.csv.gz", CSV, "csv"),
    ],
)
def test_format_by_suffix_or_sniffing(tmp_path: Path, name: str, content: str, expected: str) -> None:
    assert detect_format(write(tmp_path / name, content)) == expected


def test_format_can_be_forced(tmp_path: Path) -> None:
    path = write(tmp_path / "export.dat", PUBTATOR)
    assert [outcome(i) for i in read_all(path, fmt="pubtator")] == [
        (STRUCTURED.pmid, "ok"),
        (PLAIN.pmid, "ok"),
    ]


def test_pubtator_text_is_kept_verbatim_so_its_offsets_hold(tmp_path: Path) -> None:
    title, abstract = "Famotidine-associated  delirium.", "Lithium induces NDI in  40% of patients. "
    start = len(title) + 1  # where PubTator's offsets put "Lithium"
    annotation = f"1\t{start}\t{start + 7}\tLithium\tChemical\tD008094"
    (item,) = read_all(write(tmp_path / "in.pubtator", f"1|t|{title}\n1|a|{abstract}\n{annotation}\n"))
    assert (item.title, item.abstract) == (title, abstract)
    assert len(item.text) == len(f"{title} {abstract}")
    assert item.text[start : start + 7] == "Lithium"


def test_xml_book_articles_and_citation_sets(tmp_path: Path) -> None:
    book = """<PubmedArticleSet><PubmedBookArticle><BookDocument>
      <PMID>90000201</PMID><ArticleTitle>Amiodarone</ArticleTitle>
      <Book><BookTitle>LiverTox</BookTitle><PubDate><Year>2012</Year></PubDate></Book>
      <Abstract><AbstractText>Amiodarone can cause liver injury.</AbstractText></Abstract>
      <PublicationType>Review</PublicationType></BookDocument></PubmedBookArticle>
      <DeleteCitation><PMID>123</PMID></DeleteCitation></PubmedArticleSet>"""
    citations = """<MedlineCitationSet><MedlineCitation><PMID>90000202</PMID><Article>
      <ArticleTitle>Title only.</ArticleTitle></Article></MedlineCitation></MedlineCitationSet>"""
    (from_book,) = read_all(write(tmp_path / "book.xml", book))
    assert from_book == Abstract(
        "90000201", "Amiodarone", "Amiodarone can cause liver injury.", None, 2012, (), ("Review",)
    )
    (from_set,) = read_all(write(tmp_path / "set.xml", citations))
    assert (from_set.pmid, from_set.title, from_set.abstract) == ("90000202", "Title only.", "")


# file name, content, (pmid or position, "ok" or error code) per item in order
BAD_RECORDS = [
    (
        "bad.jsonl",
        '{"pmid": "1", "title": "T", "abstract": "A"}\n'
        "not json\n"
        "[1, 2]\n"
        '{"title": "no pmid", "abstract": "A"}\n'
        '{"pmid": "2", "title": "", "abstract": "  "}\n'
        '{"pmid": "3", "title": "T", "abstract": "A", "year": "first"}\n'
        '{"pmid": "4", "title": "T", "abstract": "nul \\u0000 here"}\n'
        '{"pmid": "5", "title": "T \\ud800", "abstract": "A"}\n'
        '{"pmid": true, "title": "T", "abstract": "A"}\n'
        '{"pmid": "6", "title": "T", "abstract": "A", "mesh_terms": [1]}\n'
        '{"pmid": "7", "title": "T", "abstract": "A"}\n',
        [
            ("1", "ok"),
            ("bad.jsonl:2", "malformed_record"),
            ("bad.jsonl:3", "malformed_record"),
            ("bad.jsonl:4", "malformed_record"),
            ("2", "empty_text"),
            ("3", "malformed_record"),
            ("4", "nul_byte"),
            ("5", "lone_surrogate"),
            ("bad.jsonl:9", "malformed_record"),
            ("6", "malformed_record"),
            ("7", "ok"),
        ],
    ),
    (
        "latin1.jsonl",
        b'{"pmid": "1", "title": "caf\xe9", "abstract": "A"}\n{"pmid": "2", "title": "T", "abstract": "A"}\n',
        [("latin1.jsonl:1", "invalid_encoding"), ("2", "ok")],
    ),
    (
        "bad.xml",
        "<PubmedArticleSet>"
        "<PubmedArticle><MedlineCitation><Article><ArticleTitle>No PMID</ArticleTitle></Article>"
        "</MedlineCitation></PubmedArticle>"
        "<PubmedArticle><PubmedData/></PubmedArticle>"
        "<PubmedArticle><MedlineCitation><PMID>8</PMID><Article><ArticleTitle>Fine</ArticleTitle></Article>"
        "</MedlineCitation></PubmedArticle>\n"
        "<PubmedArticle><MedlineCitation><PMID>9</PMID><Article><ArticleTitle>Cut off",
        [
            ("bad.xml:article 1", "malformed_record"),
            ("bad.xml:article 2", "malformed_record"),
            ("8", "ok"),
            ("bad.xml:2", "malformed_record"),
        ],
    ),
    (
        "bad.nbib",
        "PMID- 10\nTI  - Fine.\n\nPMID- 11\nTI  - Broken\nthis line has no tag\n\nTI  - No PMID\n"
        "PMID- 12\nTI  - No blank line before me.\n",
        [("10", "ok"), ("11", "malformed_record"), ("bad.nbib:8", "malformed_record"), ("12", "ok")],
    ),
    (
        "bad.pubtator",
        "20|a|abstract without title\n21|t|title without abstract\n22|t|T\n22|a|A\n23|t|last title\n",
        [
            ("20", "malformed_record"),
            ("21", "malformed_record"),
            ("22", "ok"),
            ("23", "malformed_record"),
        ],
    ),
    (
        "bad.csv",
        'pmid,title,abstract\n30,T,A\n31,"too",many,cells\n,no pmid,A\n32,"multi\nline title",A\n',
        [("30", "ok"), ("bad.csv:3", "malformed_record"), ("bad.csv:4", "malformed_record"), ("32", "ok")],
    ),
]


@pytest.mark.parametrize(("name", "content", "expected"), BAD_RECORDS)
def test_bad_records_become_failures(tmp_path: Path, name: str, content: str | bytes, expected: list) -> None:
    items = read_all(write(tmp_path / name, content))
    assert [outcome(item) for item in items] == expected
    for item in items:
        if isinstance(item, ReadFailure):
            assert item.message and item.as_tuple() == (item.where, item.code, item.message)


def test_duplicate_pmids_keep_the_first_copy(tmp_path: Path) -> None:
    first = write(tmp_path / "first.jsonl", '{"pmid": "1", "title": "first", "abstract": "A"}\n')
    second = write(
        tmp_path / "second.jsonl",
        '{"pmid": "2", "title": "T", "abstract": "A"}\n{"pmid": 1, "title": "second", "abstract": "A"}\n'
        '{"pmid": "2", "title": "again", "abstract": "A"}\n',
    )
    items = list(read_abstracts([first, second]))
    assert [outcome(i) for i in items] == [
        ("1", "ok"),
        ("2", "ok"),
        ("1", "duplicate_pmid"),
        ("2", "duplicate_pmid"),
    ]
    assert items[0].title == "first"
    assert "first.jsonl" in items[2].message


LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>
<ArticleTitle>&lol2;</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>
"""


@pytest.mark.parametrize(
    ("name", "content", "fmt", "code"),
    [
        ("missing.jsonl", None, None, "unreadable_input"),
        ("folder", "dir", None, "unreadable_input"),
        ("notes.docx", "Dear colleague,\nplease find attached.", None, "unsupported_format"),
        ("in.jsonl", JSONL, "ris", "unsupported_format"),
        ("laughs.xml", LAUGHS, None, "unsafe_xml"),
        (
            "late-entity.xml",
            LAUGHS.replace("<!ENTITY lol ", f"<!-- {'x' * 100_000} --><!ENTITY lol "),
            None,
            "unsafe_xml",
        ),
        ("prolog-only.xml", '<?xml version="1.0"?>\n<!-- nothing else -->\n', None, "unsupported_format"),
        ("other.xml", "<html><body>not PubMed</body></html>", None, "unsupported_format"),
        ("columns.csv", "id,text\n1,hello\n", None, "malformed_record"),
        ("broken.xml.gz", b"not gzip data", None, "unreadable_input"),
    ],
)
def test_unusable_files_fail_before_reading(
    tmp_path: Path, name: str, content: str | bytes | None, fmt: str | None, code: str
) -> None:
    good = write(tmp_path / "good.jsonl", JSONL)
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        write(path, content)
    with pytest.raises(InputError) as caught:
        read_abstracts([good, path], fmt=fmt)  # raises on the call: nothing is read first
    assert caught.value.code == code
    assert name in caught.value.message or fmt in caught.value.message


def test_formats_are_the_documented_ones() -> None:
    assert FORMATS == ("pubmed-xml", "medline", "pubtator", "jsonl", "csv")


# --- the bundled synthetic samples ---


def test_every_sample_abstract_is_readable() -> None:
    items = list(read_abstracts([SAMPLES / "synthetic_pubmed.xml"]))
    assert all(isinstance(item, Abstract) for item in items), [i for i in items if isinstance(i, ReadFailure)]
    assert 6 <= len(items) <= 10
    assert all(90000001 <= int(a.pmid) <= 90000099 for a in items)  # the fictitious range
    assert all(a.title and a.abstract and a.year and a.journal and a.mesh_terms for a in items)


def test_sample_xml_and_jsonl_agree() -> None:
    from_xml = list(read_abstracts([SAMPLES / "synthetic_pubmed.xml"]))
    from_jsonl = list(read_abstracts([SAMPLES / "synthetic_pubmed.jsonl"]))
    assert from_xml == from_jsonl
    lines = (SAMPLES / "synthetic_pubmed.jsonl").read_text("utf-8").splitlines()
    assert [Abstract.from_dict(json.loads(line)) for line in lines] == from_xml


@pytest.mark.parametrize(
    ("what", "holds"),
    [
        ("a structured abstract", lambda a: "BACKGROUND: " in a.abstract and "CONCLUSIONS: " in a.abstract),
        ("a negated reaction", lambda a: "No hepatotoxicity was observed" in a.abstract),
        ("a speculative reaction", lambda a: "may cause" in a.abstract),
        (
            "an animal study",
            lambda a: {"Animals", "Rats"} <= set(a.mesh_terms) and "Humans" not in a.mesh_terms,
        ),
        (
            "inline markup flattened",
            lambda a: "1.73 m2" in a.abstract and "piperacillin-tazobactam" in a.title,
        ),
        ("a case report", lambda a: "Case Reports" in a.publication_types),
        ("amiodarone pulmonary toxicity", lambda a: "amiodarone" in a.text.lower() and "pulmonary" in a.text),
    ],
)
def test_samples_cover_the_cases_the_summary_must_handle(
    what: str, holds: Callable[[Abstract], bool]
) -> None:
    abstracts = list(read_abstracts([SAMPLES / "synthetic_pubmed.xml"]))
    assert any(holds(a) for a in abstracts), what


def test_reading_both_samples_counts_the_second_copies_as_duplicates() -> None:
    items = list(read_abstracts([SAMPLES / "synthetic_pubmed.xml", SAMPLES / "synthetic_pubmed.jsonl"]))
    half = len(items) // 2
    assert all(isinstance(i, Abstract) for i in items[:half])
    assert [i.code for i in items[half:]] == ["duplicate_pmid"] * half
