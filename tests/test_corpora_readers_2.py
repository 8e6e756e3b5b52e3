"""Readers of ADE-Corpus-V2, PHEE, BioScope, TAC 2017 ADR and the DDI corpus.

Hand-made fixtures (``tests/fixtures/corpora/<name>/``, ``tests.conftest.FIXTURE_CORPORA``)
mirror each corpus' layout and formats; the
tests at the end check the real corpora (when present) against the counts in their SOURCE.md.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import corpora
from corpora.base import hash_split
from tests.conftest import FIXTURE_CORPORA as FIXTURES
from tests.conftest import real_corpus

NAMES = ["ade_corpus_v2", "phee", "bioscope", "tac2017_adr", "ddi_corpus"]


def fixture(name: str) -> Any:
    return corpora.load(name, corpus_dir=FIXTURES / name)


def rows_by_id(name: str) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for split in fixture(name).values() for row in split}


def meta(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["meta"])


def spans(row: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(s["label"], s["text"], s["start"]) for s in row["spans"]]


def relations(row: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, head text, tail text) of each relation."""
    texts = [s["text"] for s in row["spans"]]
    return [(r["type"], texts[r["head"]], texts[r["tail"]]) for r in row["relations"]]


def broken_copy(name: str, tmp_path: Path, relative: str, edit: Callable[[str], str]) -> Path:
    """A copy of fixture ``name`` whose file ``relative`` is rewritten by ``edit``."""
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    path = folder / relative
    original = path.read_text("utf-8")
    assert edit(original) != original, f"the edit does not change {relative}"
    path.write_text(edit(original), "utf-8")
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_fixture_offsets_and_relations_point_into_their_row(name: str) -> None:
    dd = fixture(name)
    assert sum(len(split) for split in dd.values()) > 0
    for split in dd.values():
        assert len(set(split["id"])) == len(split)
        for row in split:
            for s in row["spans"]:
                assert 0 <= s["start"] < s["end"] <= len(row["text"])
                assert row["text"][s["start"] : s["end"]] == s["text"]
            for r in row["relations"]:
                assert 0 <= r["head"] < len(row["spans"]) and 0 <= r["tail"] < len(row["spans"])
            assert isinstance(meta(row), dict)


@pytest.mark.parametrize(
    ("name", "label_map", "annotated", "official_splits"),
    [
        ("ade_corpus_v2", {"DRUG": "DRUG", "AE": "PROBLEM"}, frozenset(), False),
        ("phee", {"Treatment.Drug": "DRUG", "Effect": "PROBLEM"}, frozenset(), True),
        ("bioscope", {}, frozenset(), False),
        ("tac2017_adr", {"AdverseReaction": "PROBLEM"}, frozenset(), True),
        ("ddi_corpus", {"drug": "DRUG", "brand": "DRUG", "drug_n": "DRUG"}, frozenset({"DRUG"}), True),
    ],
)
def test_specs(
    name: str, label_map: dict[str, str], annotated: frozenset[str], official_splits: bool
) -> None:
    spec = corpora.get_spec(name)
    assert label_map.items() <= dict(spec.label_map).items()
    assert set(spec.label_map.values()) <= set(corpora.HOUSE_LABELS)
    assert (spec.annotated, spec.official_splits) == (annotated, official_splits)
    assert spec.title and spec.source.startswith("https://") and spec.licence


# ADE-Corpus-V2 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row_id", "expected_spans", "expected_relations", "has_ade"),
    [
        (
            "90000001_1",
            [("DRUG", "warfarin", 43), ("AE", "bleeding", 28), ("DOSE", "5 mg", 52)],
            [("ADE", "warfarin", "bleeding"), ("DOSE", "warfarin", "5 mg")],
            True,
        ),
        # both mentions occur twice: the sentence's offset in the abstract picks the second of each,
        # and the repeated line gives one relation
        (
            "90000001_2",
            [("DRUG", "warfarin", 55), ("AE", "bleeding", 72)],
            [("ADE", "warfarin", "bleeding")],
            True,
        ),
        (
            "90000001_3",
            [("DRUG", "Warfarin", 0), ("AE", "bleeding", 20)],
            [("ADE", "Warfarin", "bleeding")],
            True,
        ),
        ("90000001_4", [], [], False),
        (
            "90000002_1",
            [("DRUG", "amoxicillin", 11), ("AE", "Rash", 0)],
            [("ADE", "amoxicillin", "Rash")],
            True,
        ),
        ("90000002_2", [], [], False),
        ("90000003_1", [], [], False),
    ],
)
def test_ade_rows(
    row_id: str,
    expected_spans: list[tuple[str, str, int]],
    expected_relations: list[tuple[str, str, str]],
    has_ade: bool,
) -> None:
    row = rows_by_id("ade_corpus_v2")[row_id]
    assert spans(row) == expected_spans
    assert relations(row) == expected_relations
    assert meta(row)["has_ade"] is has_ade
    assert meta(row)["pmid"] == row_id.split("_")[0]


def test_ade_sentences_are_distinct_and_split_by_pmid() -> None:
    dd = fixture("ade_corpus_v2")
    assert set(dd) == {"train", "validation", "test"}
    for split, rows in dd.items():
        for row in rows:
            assert hash_split(meta(row)["pmid"]) == split
    texts = [(meta(row)["pmid"], row["text"]) for rows in dd.values() for row in rows]
    assert len(texts) == len(set(texts)) == 7  # the repeated ADE-NEG line is one row


def test_ade_abstract_offset_is_where_the_sentence_starts() -> None:
    row = rows_by_id("ade_corpus_v2")["90000001_2"]
    assert meta(row)["abstract_offset"] == len(
        "90000001\n\nWarfarin-associated bleeding in an elderly man.\n\n"
    ) + len("A 79-year-old man developed bleeding after warfarin 5 mg daily. ")


@pytest.mark.parametrize(
    ("relative", "edit", "message"),
    [
        ("DRUG-AE.rel", lambda text: text.replace("|Rash|", "|Itch|"), "'Itch' is not in its sentence"),
        ("DRUG-AE.rel", lambda text: text.replace("|30|38|", "|30|40|"), "do not span the 8 chars"),
        (
            "DRUG-DOSE.rel",
            lambda text: text.replace("|5 mg|", "|5 mg|x|"),
            "expected 8 '|'-separated columns",
        ),
        (
            "ADE-NEG.txt",
            lambda text: text.replace("90000003 NEG", "90000003 POS"),
            "expected 'PMID NEG sentence'",
        ),
    ],
)
def test_ade_malformed(tmp_path: Path, relative: str, edit: Callable[[str], str], message: str) -> None:
    folder = broken_copy("ade_corpus_v2", tmp_path, relative, edit)
    with pytest.raises(corpora.CorpusFormatError, match=re.escape(message)):
        corpora.load("ade_corpus_v2", corpus_dir=folder)


# PHEE -------------------------------------------------------------------------------------------------


def test_phee_splits() -> None:
    dd = fixture("phee")
    assert {split: dd[split]["id"] for split in dd} == {
        "train": ["90000011_1", "90000012_3"],
        "validation": ["90000013_1"],
        "test": ["90000014_2"],
    }


@pytest.mark.parametrize(
    ("row_id", "label", "texts"),
    [
        ("90000011_1", "Trigger", ["developed"]),
        ("90000011_1", "Treatment", ["oral isoniazid and rifampin for tuberculosis"]),
        ("90000011_1", "Treatment.Drug", ["isoniazid", "rifampin"]),  # not repeated by the combination
        ("90000011_1", "Treatment.Route", ["oral"]),
        ("90000011_1", "Treatment.Disorder", ["tuberculosis"]),
        ("90000011_1", "Combination.Trigger", ["and"]),
        ("90000011_1", "Subject.Age", ["45-year-old"]),
        ("90000011_1", "Severity", ["severe"]),
        ("90000012_3", "Treatment.Drug", ["Methotrexate"]),  # shared by two events: one span
        ("90000012_3", "Effect", ["nausea", "vomiting", "mucositis"]),
        ("90000012_3", "Negated", ["no"]),
        ("90000013_1", "Effect", ["renal", "dysfunction", "thyroid dysfunction"]),
    ],
)
def test_phee_spans(row_id: str, label: str, texts: list[str]) -> None:
    row = rows_by_id("phee")[row_id]
    assert [s["text"] for s in row["spans"] if s["label"] == label] == texts


@pytest.mark.parametrize(
    ("row_id", "expected"),
    [
        (
            "90000011_1",
            {
                ("Treatment", "developed", "oral isoniazid and rifampin for tuberculosis"),
                ("Treatment.Drug", "oral isoniazid and rifampin for tuberculosis", "isoniazid"),
                ("Treatment.Drug", "oral isoniazid and rifampin for tuberculosis", "rifampin"),
                ("Combination.Drug", "and", "isoniazid"),
                ("Combination.Drug", "and", "rifampin"),
                ("Effect", "developed", "hepatitis"),
                ("Severity", "developed", "severe"),
                ("Subject.Gender", "A 45-year-old woman", "woman"),
            },
        ),
        # a discontinuous effect is related through its first fragment
        ("90000013_1", {("Effect", "presented", "renal"), ("Effect", "presented", "thyroid dysfunction")}),
    ],
)
def test_phee_relations(row_id: str, expected: set[tuple[str, str, str]]) -> None:
    found = set(relations(rows_by_id("phee")[row_id]))
    assert expected <= found
    assert len(found) == len(relations(rows_by_id("phee")[row_id]))  # no duplicates


@pytest.mark.parametrize(
    ("row_id", "effect", "negated", "speculated", "severity", "event_type"),
    [
        ("90000011_1", "hepatitis", False, False, "High", "Adverse_event"),
        ("90000012_3", "nausea", False, True, None, "Adverse_event"),
        ("90000012_3", "vomiting", False, True, None, "Adverse_event"),
        ("90000012_3", "mucositis", True, False, None, "Adverse_event"),
        ("90000014_2", "infantile hemangioma", False, False, None, "Potential_therapeutic_event"),
    ],
)
def test_phee_event_attributes_of_each_effect(
    row_id: str, effect: str, negated: bool, speculated: bool, severity: str | None, event_type: str
) -> None:
    row = rows_by_id("phee")[row_id]
    index = next(i for i, s in enumerate(row["spans"]) if s["label"] == "Effect" and s["text"] == effect)
    (event,) = [e for e in meta(row)["events"] if index in e["arguments"]["Effect"]]
    assert (event["negated"], event["speculated"], event["severity"], event["type"]) == (
        negated,
        speculated,
        severity,
        event_type,
    )


def test_phee_discontinuous_entity_and_combination_in_meta() -> None:
    by_id = rows_by_id("phee")
    row = by_id["90000013_1"]
    (fragments,) = meta(row)["fragments"]
    assert [row["spans"][i]["text"] for i in fragments] == ["renal", "dysfunction"]
    row = by_id["90000011_1"]
    (combination,) = meta(row)["events"][0]["combinations"]
    assert [row["spans"][i]["text"] for i in combination["Drug"]] == ["isoniazid", "rifampin"]
    assert meta(row)["pmid"] == "90000011"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda text: text.replace('"start": [[30, 48], [40]]', '"start": [[31, 48], [40]]'),
            "the annotation says 'renal'",
        ),
        (
            lambda text: text.replace('"event_type": "Adverse_event"', '"event_type": "Other"'),
            "expected an event_type",
        ),
        (lambda text: text.replace('"context"', '"sentence"'), "expected {id, context"),
    ],
)
def test_phee_malformed(tmp_path: Path, edit: Callable[[str], str], message: str) -> None:
    folder = broken_copy("phee", tmp_path, "json/dev.json", edit)
    with pytest.raises(corpora.CorpusFormatError, match=re.escape(message)):
        corpora.load("phee", corpus_dir=folder)


# BioScope ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row_id", "text", "expected_spans", "expected_relations"),
    [
        ("abstracts:S1.1", "Kinase X in cell growth.", [], []),
        (
            "abstracts:S1.2",
            "Our data suggest that kinase X acts without binding DNA.",
            [
                ("speculation_scope", "suggest that kinase X acts without binding DNA", 9),
                ("negation_scope", "without binding DNA", 36),
                ("speculation_cue", "suggest that", 9),
                ("negation_cue", "without", 36),
            ],
            [
                ("CUE_SCOPE", "suggest that", "suggest that kinase X acts without binding DNA"),
                ("CUE_SCOPE", "without", "without binding DNA"),
            ],
        ),
        (  # a discontinuous cue: two cue spans, one scope
            "abstracts:S1.3",
            "Neither the mutant nor the wild type was active.",
            [
                ("negation_scope", "Neither the mutant nor the wild type was active", 0),
                ("negation_cue", "Neither", 0),
                ("negation_cue", "nor", 19),
            ],
            [
                ("CUE_SCOPE", "Neither", "Neither the mutant nor the wild type was active"),
                ("CUE_SCOPE", "nor", "Neither the mutant nor the wild type was active"),
            ],
        ),
        (  # a cue inside an inner scope that opens the outer one
            "abstracts:S3.1",
            "It is not clear whether Y binds.",
            [
                ("negation_scope", "not clear whether Y binds", 6),
                ("speculation_scope", "not clear whether Y binds", 6),
                ("negation_cue", "not", 6),
                ("speculation_cue", "clear", 10),
            ],
            [
                ("CUE_SCOPE", "not", "not clear whether Y binds"),
                ("CUE_SCOPE", "clear", "not clear whether Y binds"),
            ],
        ),
        (  # leading whitespace stripped; the scope no cue refers to is dropped
            "full_papers:S1.1",
            "Results protein Y might bind RNA.",
            [("speculation_scope", "protein Y might bind RNA", 8), ("speculation_cue", "might", 18)],
            [("CUE_SCOPE", "might", "protein Y might bind RNA")],
        ),
    ],
)
def test_bioscope_rows(
    row_id: str,
    text: str,
    expected_spans: list[tuple[str, str, int]],
    expected_relations: list[tuple[str, str, str]],
) -> None:
    row = rows_by_id("bioscope")[row_id]
    assert row["text"] == text
    assert spans(row) == expected_spans
    assert relations(row) == expected_relations


def test_bioscope_meta_keeps_xml_ids_and_splits_by_document() -> None:
    dd = fixture("bioscope")
    for split, rows in dd.items():
        for row in rows:
            assert hash_split(meta(row)["doc_id"]) == split
    row = rows_by_id("bioscope")["abstracts:S1.3"]
    assert meta(row) == {
        "doc_id": "90000021",
        "subcorpus": "abstracts",
        "sentence_id": "S1.3",
        "part": "AbstractText",
        "scopes": [{"id": "X1.3.1", "type": "negation", "scope": 0, "cues": [1, 2]}],
    }
    assert meta(rows_by_id("bioscope")["full_papers:S1.1"])["subcorpus"] == "full_papers"


@pytest.mark.parametrize(
    ("relative", "edit", "message"),
    [
        (
            "abstracts.xml",
            lambda text: text.replace('ref="X1.2.2"', 'ref="X9.9.9"'),
            "refers to scope 'X9.9.9'",
        ),
        ("abstracts.xml", lambda text: text.replace("</Annotation>", ""), "not well-formed XML"),
        (
            "full_papers.xml",
            lambda text: text.replace('type="speculation"', 'type="hedge"'),
            "cue type='hedge'",
        ),
        (
            "abstracts.xml",
            lambda text: text.replace("<DocID", "<Other").replace("</DocID>", "</Other>"),
            "DocID",
        ),
    ],
)
def test_bioscope_malformed(tmp_path: Path, relative: str, edit: Callable[[str], str], message: str) -> None:
    folder = broken_copy("bioscope", tmp_path, relative, edit)
    with pytest.raises(corpora.CorpusFormatError, match=re.escape(message)):
        corpora.load("bioscope", corpus_dir=folder)


# TAC 2017 ADR -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row_id", "expected"),
    [
        (
            "FIXTUREDRUG:adverse reactions",
            [  # text as in the section (the file's mentions are lower-cased); one span per offset
                ("Nausea", ["MEDDRA:10028813"], ["human"]),
                ("headache", ["MEDDRA:10019211"], ["human"]),
                ("dizziness", ["MEDDRA:10013573", "MEDDRA:10013578"], ["human"]),
                ("hepatic necrosis", ["MEDDRA:10019692"], ["animal"]),
            ],
        ),
        (
            "FIXTUREDRUG:warnings and precautions",
            [
                ("Hepatotoxicity", ["MEDDRA:10019851"], ["human"]),
                ("liver injury", ["MEDDRA:10067125"], ["human"]),
            ],
        ),
        (
            "OTHERFIXTURE:boxed warnings",
            [
                ("SUICIDAL THOUGHTS", ["MEDDRA:10042458"], ["human"]),
                ("suicidal thoughts", ["MEDDRA:10042458"], ["human"]),
            ],
        ),
    ],
)
def test_tac_spans(row_id: str, expected: list[tuple[str, list[str], list[str]]]) -> None:
    row = rows_by_id("tac2017_adr")[row_id]
    attributes = meta(row)["span_attributes"]
    assert [
        (s["text"], s["ids"], a["sources"]) for s, a in zip(row["spans"], attributes, strict=True)
    ] == expected
    assert {s["label"] for s in row["spans"]} == {"AdverseReaction"}


def test_tac_unplaced_mentions_and_splits() -> None:
    dd = fixture("tac2017_adr")
    assert {split: dd[split]["id"] for split in dd} == {
        "train": ["FIXTUREDRUG:adverse reactions", "FIXTUREDRUG:warnings and precautions"],
        "test": ["OTHERFIXTURE:boxed warnings"],
    }
    row = rows_by_id("tac2017_adr")["FIXTUREDRUG:warnings and precautions"]
    assert meta(row)["unplaced"] == [
        {
            "text": "injection site pain",
            "ids": ["MEDDRA:10022086"],
            "llt_ids": ["MEDDRA:10022086"],
            "source": "human",
        },
        {"text": "injection site swelling", "ids": [], "llt_ids": [], "source": "human"},
    ]
    assert (meta(row)["label_id"], meta(row)["section"]) == ("FIXTUREDRUG", "warnings and precautions")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda text: text.replace('"liver injury",', '"liver damage",', 1),
            "the annotation says 'liver damage'",
        ),
        (lambda text: text.replace('"Nausea",\n', "", 1), "not an 8-item list"),
        (
            lambda text: text.replace('"section_text"', '"text"'),
            "expected label_id, section_name, section_text",
        ),
        (lambda text: text.replace("10019211.0", '"n/a"', 1), "MedDRA code 'n/a' is not a number"),
    ],
)
def test_tac_malformed(tmp_path: Path, edit: Callable[[str], str], message: str) -> None:
    folder = broken_copy("tac2017_adr", tmp_path, "demner-fushman-train-labels.json", edit)
    with pytest.raises(corpora.CorpusFormatError, match=re.escape(message)):
        corpora.load("tac2017_adr", corpus_dir=folder)


# DDI corpus -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row_id", "expected_spans", "expected_relations"),
    [
        (
            "DDI-DrugBank.d9001.s0",
            [
                ("drug", "Ketoconazole", 0),  # inclusive 0-11 -> exclusive 0-12
                ("drug", "Drugone", 40),
                ("brand", "Brandex", 49),
                ("group", "loop", 65),  # "loop ... diuretics": one span per fragment
                ("group", "diuretics", 82),
                ("group", "thiazide diuretics", 73),
            ],
            [
                ("mechanism", "Ketoconazole", "Drugone"),
                ("unspecified", "Ketoconazole", "Brandex"),  # positive pair without a type
                ("advise", "Drugone", "loop"),  # a discontinuous entity is related through its first fragment
                ("advise", "Drugone", "thiazide diuretics"),
            ],
        ),
        ("DDI-DrugBank.d9001.s1", [], []),
        (
            "DDI-MedLine.d9002.s0",
            [
                ("group", "mu-", 20),
                ("group", "selective opioids", 34),
                ("group", "delta-selective opioids", 28),
            ],
            [("effect", "mu-", "toxinex"), ("effect", "delta-selective opioids", "toxinex")],
        ),
        # the file's offsets of "warfarin" are one character late: shifted back onto the text
        (
            "DDI-DrugBank.d9003.s0",
            [("drug", "Aspirin", 0), ("drug", "warfarin", 26)],
            [("int", "Aspirin", "warfarin")],
        ),
        ("DDI-MedLine.d9004.s0", [("drug", "Ethanol", 0), ("drug", "lithium", 23)], []),  # ddi="false" only
    ],
)
def test_ddi_rows(
    row_id: str, expected_spans: list[tuple[str, str, int]], expected_relations: list[tuple[str, str, str]]
) -> None:
    row = rows_by_id("ddi_corpus")[row_id]
    assert spans(row)[: len(expected_spans)] == expected_spans
    assert relations(row) == expected_relations


@pytest.mark.parametrize(
    ("row_id", "split", "doc_id", "source", "task", "fragments"),
    [
        ("DDI-DrugBank.d9001.s0", "train", "DDI-DrugBank.d9001", "DrugBank", "DDI", [["loop", "diuretics"]]),
        (
            "DDI-MedLine.d9002.s0",
            "train",
            "DDI-MedLine.d9002",
            "MedLine",
            "DDI",
            [["mu-", "selective opioids"]],
        ),
        ("DDI-DrugBank.d9003.s0", "test", "DDI-DrugBank.d9003", "DrugBank", "DDI", []),
        ("DDI-MedLine.d9004.s0", "test", "DDI-MedLine.d9004", "MedLine", "DDI", []),
        ("DDI-DrugBank.d9005.s0", "test", "DDI-DrugBank.d9005", "DrugBank", "DrugNER", []),
        ("DDI-MedLine.d9006.s0", "test", "DDI-MedLine.d9006", "MedLine", "DrugNER", []),
    ],
)
def test_ddi_meta_and_splits(
    row_id: str, split: str, doc_id: str, source: str, task: str, fragments: list[list[str]]
) -> None:
    row = next(row for row in fixture("ddi_corpus")[split] if row["id"] == row_id)
    found = meta(row)
    assert (found["doc_id"], found["source"], found["task"]) == (doc_id, source, task)
    assert [[row["spans"][i]["text"] for i in group] for group in found["fragments"]] == fragments


def test_ddi_has_only_official_splits() -> None:
    assert set(fixture("ddi_corpus")) == {"train", "test"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda text: text.replace('charOffset="40-46"', 'charOffset="45-51"'),
            "the annotation says 'Drugone'",
        ),
        (lambda text: text.replace('charOffset="0-11"', 'charOffset="0:11"'), "charOffset '0:11' is not"),
        (lambda text: text.replace('type="brand"', 'type="food"'), "unknown type 'food'"),
        (
            lambda text: text.replace('e2="DDI-DrugBank.d9001.s0.e1"', 'e2="nowhere"'),
            "pair of unknown entities",
        ),
    ],
)
def test_ddi_malformed(tmp_path: Path, edit: Callable[[str], str], message: str) -> None:
    folder = broken_copy("ddi_corpus", tmp_path, "DDICorpus/Train/DrugBank/Drugone_ddi.xml", edit)
    with pytest.raises(corpora.CorpusFormatError, match=re.escape(message)):
        corpora.load("ddi_corpus", corpus_dir=folder)


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("ade_corpus_v2", "DRUG-DOSE.rel"),
        ("phee", "json/test.json"),
        ("bioscope", "full_papers.xml"),
        ("tac2017_adr", "demner-fushman-test-labels.json"),
        ("ddi_corpus", "DDICorpus/Test/Test for DrugNER task/MedLine"),
    ],
)
def test_missing_file_names_the_corpus(tmp_path: Path, name: str, missing: str) -> None:
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    path = folder / missing
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    with pytest.raises(
        corpora.CorpusNotFoundError, match=re.escape(corpora.get_spec(name).source.split()[0])
    ):
        corpora.load(name, corpus_dir=folder)


# The real corpora (counts from each SOURCE.md) ---------------------------------------------------------


def real(name: str) -> Any:
    return corpora.load(name, corpus_dir=real_corpus(name))


def count_spans(rows: Any, key: Callable[[dict[str, Any]], str] = lambda s: s["label"]) -> Counter[str]:
    return Counter(key(s) for row in rows for s in row["spans"])


def count_relations(rows: Any) -> Counter[str]:
    return Counter(r["type"] for row in rows for r in row["relations"])


@pytest.mark.slow
def test_real_ade_corpus_v2() -> None:
    dd = real("ade_corpus_v2")
    assert {split: len(rows) for split, rows in dd.items()} == {
        "train": 16854,
        "validation": 2008,
        "test": 2098,
    }
    rows = [row for split in dd.values() for row in split]
    assert len(rows) == 4272 + 16695 - 7  # pair sentences + ADE-NEG lines, 7 of them repeated
    assert sum(meta(row)["has_ade"] for row in rows) == 4272
    assert len({meta(row)["pmid"] for row in rows}) == 2972
    assert count_relations(rows) == {"ADE": 6821, "DOSE": 279}  # one per line of DRUG-AE.rel / DRUG-DOSE.rel
    assert count_spans(rows) == {"DRUG": 5063, "AE": 5776, "DOSE": 230}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("split", "sentences", "adverse", "therapeutic", "with_argument"),
    [
        (
            "train",
            2898,
            2710,
            296,
            {"Treatment.Drug": 2973, "Effect": 2781, "Subject": 1444, "Speculated": 367},
        ),
        (
            "validation",
            961,
            886,
            117,
            {"Treatment.Drug": 991, "Effect": 909, "Subject": 516, "Speculated": 143},
        ),
        ("test", 968, 889, 121, {"Treatment.Drug": 997, "Effect": 903, "Subject": 464, "Speculated": 123}),
    ],
)
def test_real_phee(
    split: str, sentences: int, adverse: int, therapeutic: int, with_argument: dict[str, int]
) -> None:
    rows = real("phee")[split]
    assert len(rows) == sentences
    events = [event for row in rows for event in meta(row)["events"]]
    assert Counter(e["type"] for e in events) == {
        "Adverse_event": adverse,
        "Potential_therapeutic_event": therapeutic,
    }
    assert {role: sum(role in e["arguments"] for e in events) for role in with_argument} == with_argument


@pytest.mark.slow
@pytest.mark.parametrize(
    (
        "subcorpus",
        "sentences",
        "negation_cues",
        "speculation_cues",
        "scopes",
        "with_negation",
        "with_speculation",
    ),
    [
        ("abstracts", 11871, 1757, 2694, 4378, 1597, 2101),
        ("full_papers", 2670, 378, 682, 1048 - 4, 339, 519),  # 4 scopes without a cue are dropped
    ],
)
def test_real_bioscope(
    subcorpus: str,
    sentences: int,
    negation_cues: int,
    speculation_cues: int,
    scopes: int,
    with_negation: int,
    with_speculation: int,
) -> None:
    rows = [
        row for split in real("bioscope").values() for row in split if meta(row)["subcorpus"] == subcorpus
    ]
    labels = count_spans(rows)
    assert len(rows) == sentences
    assert (labels["negation_cue"], labels["speculation_cue"]) == (negation_cues, speculation_cues)
    assert labels["negation_scope"] + labels["speculation_scope"] == scopes
    assert count_relations(rows) == {"CUE_SCOPE": negation_cues + speculation_cues}
    assert sum(any(s["label"] == "negation_cue" for s in row["spans"]) for row in rows) == with_negation
    assert sum(any(s["label"] == "speculation_cue" for s in row["spans"]) for row in rows) == with_speculation


@pytest.mark.slow
@pytest.mark.parametrize(
    ("split", "labels", "sections", "spans_", "unplaced", "pt_ids"),
    [
        ("train", 101, 239, 6989, 639, 1547),  # 7652 mentions: 24 share offsets with another
        ("test", 99, 237, 6209, 596, 1354),  # 6835 mentions: 30 share offsets with another
    ],
)
def test_real_tac2017_adr(
    split: str, labels: int, sections: int, spans_: int, unplaced: int, pt_ids: int
) -> None:
    rows = real("tac2017_adr")[split]
    assert (len({meta(row)["label_id"] for row in rows}), len(rows)) == (labels, sections)
    assert sum(len(row["spans"]) for row in rows) == spans_
    assert sum(len(meta(row)["unplaced"]) for row in rows) == unplaced
    ids = {i for row in rows for s in row["spans"] for i in s["ids"]}
    ids |= {i for row in rows for m in meta(row)["unplaced"] for i in m["ids"]}
    assert len(ids) == pt_ids  # SOURCE.md's count also counts "no PT id" as one


@pytest.mark.slow
@pytest.mark.parametrize(
    ("split", "sentences", "relation_counts"),
    [
        (
            "train",
            {("DDI", "DrugBank"): 5675, ("DDI", "MedLine"): 1301},
            {"effect": 1687, "mechanism": 1319, "advise": 826, "int": 188, "unspecified": 1},
        ),
        (
            "test",
            {
                ("DDI", "DrugBank"): 973,
                ("DDI", "MedLine"): 326,
                ("DrugNER", "DrugBank"): 145,
                ("DrugNER", "MedLine"): 520,
            },
            {"effect": 360, "mechanism": 302, "advise": 221, "int": 96},
        ),
    ],
)
def test_real_ddi_corpus(
    split: str, sentences: dict[tuple[str, str], int], relation_counts: dict[str, int]
) -> None:
    rows = real("ddi_corpus")[split]
    assert Counter((meta(row)["task"], meta(row)["source"]) for row in rows) == sentences
    assert count_relations(rows) == relation_counts
