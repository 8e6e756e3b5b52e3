"""Corpus readers: the shared base, and bc5cdr, ncbi_disease, chia, mtsamples, aci_bench.

Fixture corpora (``tests/fixtures/corpora/<name>/``, ``tests.conftest.FIXTURE_CORPORA``) are
tiny hand-written files in each corpus' real layout. Tests on the real corpora skip when a corpus
is not installed.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

import corpora
from corpora import base, chia
from corpora.base import ENV_VAR, HOUSE_LABELS, REGISTRY, CorpusFormatError, CorpusNotFoundError, hash_split
from tests.conftest import FIXTURE_CORPORA as FIXTURES
from tests.conftest import real_corpus

MY_CORPORA = ("bc5cdr", "ncbi_disease", "chia", "mtsamples", "aci_bench")


def fixture_copy(name: str, tmp_path: Path) -> Path:
    """A private copy of fixture corpus ``name`` that a test may alter."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def meta(doc: dict[str, Any]) -> dict[str, Any]:
    return json.loads(doc["meta"])


# --- the shared base -------------------------------------------------------------------------------


def test_corpus_path_prefers_explicit_dir_then_env_var_then_default(tmp_path, monkeypatch) -> None:
    explicit, env_root, default_root = tmp_path / "explicit", tmp_path / "env", tmp_path / "default"
    for folder in (explicit, env_root / "chia", default_root / "chia"):
        folder.mkdir(parents=True)
    monkeypatch.setattr(base, "DEFAULT_ROOT", default_root)
    monkeypatch.setenv(ENV_VAR, str(env_root))
    assert corpora.corpus_path("chia", explicit) == explicit
    assert corpora.corpus_path("chia") == env_root / "chia"
    monkeypatch.delenv(ENV_VAR)
    assert corpora.corpus_path("chia") == default_root / "chia"


def test_missing_corpus_error_names_corpus_path_and_source(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(CorpusNotFoundError) as err:
        corpora.load("ncbi_disease")
    message = str(err.value)
    assert "NCBI disease corpus" in message and "'ncbi_disease/'" in message
    assert str(tmp_path / "ncbi_disease") in message
    assert "https://github.com/spyysalo/ncbi-disease" in message
    assert err.value.code == "corpus_not_found"


def test_unknown_corpus_names_the_known_ones() -> None:
    with pytest.raises(CorpusNotFoundError, match="unknown corpus 'no_such_corpus'.*bc5cdr.*chia"):
        corpora.load("no_such_corpus")


def test_missing_split_names_the_splits_there_are() -> None:
    with pytest.raises(CorpusNotFoundError, match="has no split 'test'; it has train, validation, test1"):
        corpora.load("aci_bench", split="test", corpus_dir=FIXTURES / "aci_bench")


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("bc5cdr", "CDR.Corpus.v010516/CDR_TestSet.PubTator.txt"),
        ("ncbi_disease", "original-data/NCBIdevelopset_corpus.txt"),
        ("chia", "chia_with_scope/NCT00000002_exc.ann"),
        ("mtsamples", "mtsamples.jsonl.gz"),
        ("aci_bench", "challenge_data/clef_taskC_test3_metadata.csv"),
    ],
)
def test_missing_file_inside_corpus_names_it(tmp_path, name: str, missing: str) -> None:
    folder = fixture_copy(name, tmp_path)
    (folder / missing).unlink()
    with pytest.raises(CorpusNotFoundError, match=re.escape(str(folder / missing))):
        corpora.load(name, corpus_dir=folder)


@pytest.mark.parametrize(
    ("name", "file", "old", "new"),
    [
        ("bc5cdr", "CDR.Corpus.v010516/CDR_TrainingSet.PubTator.txt", "1000001\t22\t32", "1000001\t21\t31"),
        ("ncbi_disease", "original-data/NCBItestset_corpus.txt", "2000004\t0\t12", "2000004\t1\t13"),
    ],
)
def test_offset_mismatch_is_a_format_error(tmp_path, name: str, file: str, old: str, new: str) -> None:
    folder = fixture_copy(name, tmp_path)
    replace_in(folder / file, old, new)
    with pytest.raises(CorpusFormatError, match="the annotation says"):
        corpora.load(name, corpus_dir=folder)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_spec_labels_are_house_labels(name: str) -> None:
    spec = corpora.get_spec(name)
    assert set(spec.label_map.values()) <= set(HOUSE_LABELS)
    assert spec.annotated <= set(HOUSE_LABELS)
    assert spec.title and "https://" in spec.source and spec.licence


@pytest.mark.parametrize("name", MY_CORPORA)
def test_fixture_rows_keep_the_schema_and_offsets(name: str) -> None:
    dd = corpora.load(name, corpus_dir=FIXTURES / name)
    for split, dataset in dd.items():
        assert len(set(dataset["id"])) == len(dataset), split
        for doc in dataset:
            assert isinstance(meta(doc), dict)
            for mention in doc["spans"]:
                assert doc["text"][mention["start"] : mention["end"]] == mention["text"]
            for rel in doc["relations"]:
                assert -1 <= rel["head"] < len(doc["spans"]) and -1 <= rel["tail"] < len(doc["spans"])


def test_hash_split_is_deterministic_and_roughly_80_10_10() -> None:
    splits = [hash_split(f"NCT{i:08d}") for i in range(2000)]
    assert splits == [hash_split(f"NCT{i:08d}") for i in range(2000)]
    counts = {split: splits.count(split) for split in ("train", "validation", "test")}
    assert 1500 < counts["train"] < 1700 and 150 < counts["validation"] < 250 and 150 < counts["test"] < 250


# --- bc5cdr ----------------------------------------------------------------------------------------


def test_bc5cdr_fixture() -> None:
    dd = corpora.load("bc5cdr", corpus_dir=FIXTURES / "bc5cdr")
    assert {split: dd[split]["id"] for split in dd} == {
        "train": ["1000001", "1000002"],
        "validation": ["1000003"],
        "test": ["1000004"],
    }
    doc = dd["train"][0]
    assert doc["text"].startswith("Lisinopril-associated angioedema in an older adult. A 70-year-old")
    assert meta(doc) == {"title_chars": len("Lisinopril-associated angioedema in an older adult.")}
    assert [(s["start"], s["end"], s["label"], s["text"], s["ids"]) for s in doc["spans"]] == [
        (0, 10, "Chemical", "Lisinopril", ["MESH:D017706"]),
        (22, 32, "Disease", "angioedema", ["MESH:D000799"]),
        (80, 90, "Disease", "angioedema", ["MESH:D000799"]),
        (115, 125, "Chemical", "lisinopril", ["MESH:D017706"]),
        (127, 137, "Chemical", "Lisinopril", ["MESH:D017706"]),
        (158, 166, "Disease", "swelling", []),
    ]
    assert doc["relations"] == [
        {"type": "CID", "head": -1, "tail": -1, "head_id": "MESH:D017706", "tail_id": "MESH:D000799"}
    ]
    composite = dd["train"][1]["spans"][0]
    assert (composite["text"], composite["ids"]) == ("Nausea and vomiting", ["MESH:D009325", "MESH:D014839"])
    assert len(dd["train"][1]["relations"]) == 2


# --- ncbi_disease ----------------------------------------------------------------------------------


def test_ncbi_disease_fixture_splits_and_repeated_document() -> None:
    dd = corpora.load("ncbi_disease", corpus_dir=FIXTURES / "ncbi_disease")
    assert {split: dd[split]["id"] for split in dd} == {
        "train": ["2000001", "2000002"],  # the identical second copy of 2000002 is dropped
        "validation": ["2000003"],
        "test": ["2000004"],
    }
    assert [s["label"] for s in dd["test"][0]["spans"]] == ["SpecificDisease", "Modifier"]


@pytest.mark.parametrize(
    ("start", "text", "label", "ids"),
    [
        (0, "Ovarian and breast cancers", "CompositeMention", ["MESH:D010051", "MESH:D001943"]),
        (30, "Fabry disease", "SpecificDisease", ["OMIM:301500"]),
        (30, "Fabry disease", "SpecificDisease", ["MESH:D000795"]),  # id with a stray space
        (91, "breast and ovarian cancer", "CompositeMention", ["MESH:D001943", "MESH:D010051"]),
        (120, "colorectal cancer+polyposis", "SpecificDisease", ["MESH:D015179", "MESH:D044483"]),
        (176, "Fabry", "Modifier", ["MESH:D000795"]),  # id with an explicit MESH: prefix
    ],
)
def test_ncbi_disease_fixture_mentions(start: int, text: str, label: str, ids: list[str]) -> None:
    doc = corpora.load("ncbi_disease", "train", corpus_dir=FIXTURES / "ncbi_disease")[0]
    assert {"start": start, "end": start + len(text), "label": label, "text": text, "ids": ids} in doc[
        "spans"
    ]


def test_ncbi_disease_labels_all_map_to_problem() -> None:
    spec = corpora.get_spec("ncbi_disease")
    assert set(spec.label_map) == {"SpecificDisease", "DiseaseClass", "CompositeMention", "Modifier"}
    assert set(spec.label_map.values()) == spec.annotated == {"PROBLEM"}


def test_ncbi_disease_repeated_pmid_with_other_content_is_an_error(tmp_path) -> None:
    folder = fixture_copy("ncbi_disease", tmp_path)
    path = folder / "original-data" / "NCBItrainset_corpus.txt"
    head, _, tail = path.read_text(encoding="utf-8").rpartition("\tD009369")  # in the second copy
    path.write_text(f"{head}\tD009370{tail}", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match="PMID 2000002 occurs twice with different content"):
        corpora.load("ncbi_disease", corpus_dir=folder)


# --- chia ------------------------------------------------------------------------------------------


def chia_rows(folder: Path) -> dict[str, dict[str, Any]]:
    dd = corpora.load("chia", corpus_dir=folder)
    return {doc["id"]: {**doc, "split": split} for split, dataset in dd.items() for doc in dataset}


def test_chia_fixture_rows_sections_and_splits() -> None:
    rows = chia_rows(FIXTURES / "chia")
    assert sorted(rows) == ["NCT00000001_exc", "NCT00000001_inc", "NCT00000002_exc", "NCT00000002_inc"]
    for doc_id, doc in rows.items():
        nct_id, section = doc_id.split("_")
        assert meta(doc)["nct_id"] == nct_id
        assert meta(doc)["section"] == {"inc": "inclusion", "exc": "exclusion"}[section]
        assert doc["split"] == hash_split(nct_id)
    assert rows["NCT00000002_inc"]["text"] == "NA" and rows["NCT00000002_inc"]["spans"] == []
    assert corpora.get_spec("chia").official_splits is False


def test_chia_fixture_inclusion_spans_relations_attributes() -> None:
    doc = chia_rows(FIXTURES / "chia")["NCT00000001_inc"]
    assert [(s["label"], s["text"]) for s in doc["spans"]] == [
        ("Person", "Adults"),
        ("Value", "18-75 years"),
        ("Condition", "type 2 diabetes mellitus"),
        ("Measurement", "HbA1c"),
        ("Value", "between 7% and 10%"),
        ("Drug", "metformin"),
        ("Drug", "sulfonylurea"),
        ("Temporal", "for at least 3 months"),
    ]
    assert [(r["type"], r["head"], r["tail"]) for r in doc["relations"]] == [
        ("Has_value", 0, 1),
        ("Has_value", 3, 4),
        ("OR", 5, 6),
        ("Has_temporal", 6, 7),
    ]
    assert meta(doc)["attributes"] == [{"name": "Optional", "span": 7}]
    assert meta(doc)["discontinuous"] == []


def test_chia_fixture_discontinuous_and_multi_line_entities() -> None:
    doc = chia_rows(FIXTURES / "chia")["NCT00000001_exc"]
    assert [(s["start"], s["end"], s["label"], s["text"]) for s in doc["spans"]] == [
        (0, 9, "Pregnancy_considerations", "Pregnancy"),
        (10, 16, "Qualifier", "Severe"),
        (10, 65, "Scope", "Severe renal or hepatic impairment\nPrior gastric bypass"),
        (17, 22, "Condition", "renal"),
        (26, 44, "Condition", "hepatic impairment"),
        (34, 44, "Condition", "impairment"),
        (51, 73, "Procedure", "gastric bypass surgery"),
    ]
    assert meta(doc)["discontinuous"] == [[3, 5]]  # "renal ... impairment"
    assert [(r["type"], r["head"], r["tail"]) for r in doc["relations"]] == [
        ("OR", 3, 4),
        ("Has_qualifier", 3, 1),
        ("AND", 2, 6),
    ]


def crlf_copy(folder: Path) -> None:
    """Rewrite a fixture copy the way most Chia files are: CRLF text, offsets counting the CRs."""
    for txt in folder.glob("chia_with_scope/*.txt"):
        text = txt.read_text(encoding="utf-8")
        txt.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
        ann = txt.with_suffix(".ann")

        def shift(match: re.Match[str], text: str = text) -> str:
            offset = int(match.group())
            return str(offset + text[:offset].count("\n"))

        lines = []
        for line in ann.read_text(encoding="utf-8").split("\n"):
            if line.startswith("T"):
                tid, offsets, rest = line.split("\t", 2)
                line = "\t".join([tid, re.sub(r"\d+", shift, offsets), rest])
            lines.append(line)
        ann.write_text("\n".join(lines), encoding="utf-8")


def test_chia_crlf_text_reads_like_lf_text(tmp_path) -> None:
    folder = fixture_copy("chia", tmp_path)
    crlf_copy(folder)
    assert b"\r\n" in (folder / "chia_with_scope" / "NCT00000001_exc.txt").read_bytes()
    assert chia_rows(folder) == chia_rows(FIXTURES / "chia")


def test_chia_mismatched_entity_is_dropped_with_its_relations(tmp_path, monkeypatch, caplog) -> None:
    folder = fixture_copy("chia", tmp_path)
    replace_in(folder / "chia_with_scope" / "NCT00000001_inc.ann", "T5\tValue 60 78", "T5\tValue 61 79")
    replace_in(folder / "chia_with_scope" / "NCT00000001_inc.ann", "A1\tOptional", "stray line\nA1\tOptional")
    monkeypatch.setattr(chia, "MAX_MISMATCH_FRACTION", 0.1)
    with caplog.at_level(logging.WARNING, logger="corpora.chia"):
        doc = chia_rows(folder)["NCT00000001_inc"]
    assert "between 7% and 10%" not in [s["text"] for s in doc["spans"]]
    assert [r["type"] for r in doc["relations"]] == ["Has_value", "OR", "Has_temporal"]
    assert "skipped 1 malformed .ann lines; dropped 1 of 15 entities" in caplog.text
    assert "NCT00000001_inc.ann:T5" in caplog.text


def test_chia_too_many_mismatches_is_a_format_error(tmp_path) -> None:
    folder = fixture_copy("chia", tmp_path)
    replace_in(folder / "chia_with_scope" / "NCT00000001_inc.ann", "T5\tValue 60 78", "T5\tValue 61 79")
    with pytest.raises(CorpusFormatError, match="1 of 15 entities do not match their text"):
        corpora.load("chia", corpus_dir=folder)


def test_chia_label_map() -> None:
    spec = corpora.get_spec("chia")
    assert dict(spec.label_map) == {
        "Condition": "PROBLEM",
        "Drug": "DRUG",
        "Procedure": "PROCEDURE",
        "Measurement": "TEST",
    }
    assert spec.annotated == {"PROBLEM", "DRUG", "PROCEDURE", "TEST"}


# --- mtsamples -------------------------------------------------------------------------------------


def test_mtsamples_fixture(tmp_path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="corpora.mtsamples"):
        dd = corpora.load("mtsamples", corpus_dir=fixture_copy("mtsamples", tmp_path))
    rows = {doc["id"]: {**doc, "split": split} for split, dataset in dd.items() for doc in dataset}
    assert sorted(rows) == ["1", "2", "3"]  # note 4 has no transcription
    assert "dropped 1 notes without a transcription" in caplog.text
    assert rows["2"]["split"] == rows["3"]["split"] == hash_split(rows["2"]["text"])  # copies stay together
    assert rows["1"]["text"].startswith("SUBJECTIVE:,  Here for blood pressure check.")
    assert rows["1"]["spans"] == rows["1"]["relations"] == []
    assert meta(rows["1"]) == {
        "specialty": "General Medicine",
        "sample_name": "Hypertension Follow-up",
        "description": "Follow-up of hypertension.",
        "keywords": ["general medicine", "hypertension", "blood pressure"],
    }
    assert meta(rows["2"])["keywords"] == []
    assert meta(rows["3"])["keywords"] == ["surgery", "knee", "arthroscopy"]
    assert corpora.get_spec("mtsamples").official_splits is False


# --- aci_bench -------------------------------------------------------------------------------------


def test_aci_bench_fixture() -> None:
    dd = corpora.load("aci_bench", corpus_dir=FIXTURES / "aci_bench")
    assert {split: dd[split]["id"] for split in dd} == {
        "train": ["D2N901", "D2N902"],
        "validation": ["D2N903"],
        "test1": ["D2N904"],
        "test2": ["D2N905"],
        "test3": ["D2N906"],
    }
    doc = dd["test3"][0]
    assert doc["text"] == 'CHIEF COMPLAINT\n\nFatigue, "tired all the time".'
    assert doc["spans"] == doc["relations"] == []
    assert meta(doc) == {
        "dataset": "virtassist",
        "encounter_id": "D2N906",
        "dialogue": '[doctor] any chest pain ?\n[patient] no , "just" tired .',
        "metadata": {
            "id": "VA906",
            "doctor_name": "",
            "patient_gender": "male",
            "patient_age": "66",
            "patient_firstname": "Alex",
            "patient_familyname": "Doe",
            "cc": "fatigue",
            "2nd_complaints": "anemia",
        },
    }


def test_aci_bench_encounter_without_metadata_is_an_error(tmp_path) -> None:
    folder = fixture_copy("aci_bench", tmp_path)
    replace_in(folder / "challenge_data" / "valid_metadata.csv", "D2N903", "D2N999")
    with pytest.raises(CorpusFormatError, match="valid_metadata.csv: no row for encounter D2N903"):
        corpora.load("aci_bench", corpus_dir=folder)


# --- the real corpora (skipped when absent; counts from each corpus' SOURCE.md) --------------------


def label_counts(dataset: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for spans in dataset["spans"]:
        for mention in spans:
            counts[mention["label"]] = counts.get(mention["label"], 0) + 1
    return counts


@pytest.mark.parametrize(
    ("split", "docs", "chemical", "disease", "cid"),
    [
        ("train", 500, 5203, 4182, 1038),
        ("validation", 500, 5347, 4244, 1012),
        ("test", 500, 5385, 4424, 1066),
    ],
)
def test_real_bc5cdr_counts(split: str, docs: int, chemical: int, disease: int, cid: int) -> None:
    dataset = corpora.load("bc5cdr", split, corpus_dir=real_corpus("bc5cdr"))
    assert len(dataset) == docs
    assert label_counts(dataset) == {"Chemical": chemical, "Disease": disease}
    assert sum(len(relations) for relations in dataset["relations"]) == cid


@pytest.mark.parametrize(
    ("split", "docs", "labels"),
    [
        # SOURCE.md counts PMID 8528200 twice in train (593 records, 5145 mentions); the reader keeps one copy
        (
            "train",
            592,
            {"SpecificDisease": 2962, "DiseaseClass": 769, "Modifier": 1288, "CompositeMention": 115},
        ),
        (
            "validation",
            100,
            {"SpecificDisease": 412, "DiseaseClass": 126, "Modifier": 214, "CompositeMention": 35},
        ),
        ("test", 100, {"SpecificDisease": 555, "DiseaseClass": 121, "Modifier": 264, "CompositeMention": 20}),
    ],
)
def test_real_ncbi_disease_counts(split: str, docs: int, labels: dict[str, int]) -> None:
    dataset = corpora.load("ncbi_disease", split, corpus_dir=real_corpus("ncbi_disease"))
    assert len(dataset) == docs
    assert label_counts(dataset) == labels
    ids = {i for spans in dataset["spans"] for mention in spans for i in mention["ids"]}
    assert ids and all(re.fullmatch(r"(MESH:[CD]\d+|OMIM:\d+)", i) for i in ids)


@pytest.mark.slow
def test_real_chia_counts() -> None:
    dd = corpora.load("chia", corpus_dir=real_corpus("chia"))
    entities: dict[str, int] = {}
    relations: dict[str, int] = {}
    split_of: dict[str, set[str]] = {}
    for split, dataset in dd.items():
        for doc_id, spans, rels, doc_meta in zip(
            dataset["id"], dataset["spans"], dataset["relations"], dataset["meta"], strict=True
        ):
            later_fragments = {i for group in json.loads(doc_meta)["discontinuous"] for i in group[1:]}
            for index, mention in enumerate(spans):
                if index not in later_fragments:
                    entities[mention["label"]] = entities.get(mention["label"], 0) + 1
            for rel in rels:
                relations[rel["type"]] = relations.get(rel["type"], 0) + 1
            split_of.setdefault(doc_id.split("_")[0], set()).add(split)
    assert sum(len(dataset) for dataset in dd.values()) == 2000
    assert len(split_of) == 1000 and all(len(splits) == 1 for splits in split_of.values())
    # SOURCE.md: 48,870 entities; the 3 whose offsets miss their text (2 Condition, 1 Visit) are dropped
    assert sum(entities.values()) == 48867
    assert {
        label: entities[label] for label in ("Condition", "Drug", "Procedure", "Measurement", "Visit")
    } == {
        "Condition": 12037,
        "Drug": 3801,
        "Procedure": 3595,
        "Measurement": 3305,
        "Visit": 164,
    }
    assert {rel: relations[rel] for rel in ("Has_value", "Has_temporal", "Subsumes", "causal")} == {
        "Has_value": 3643,
        "Has_temporal": 3092,
        "Subsumes": 1875,
        "causal": 36,
    }


def test_real_mtsamples_counts() -> None:
    dd = corpora.load("mtsamples", corpus_dir=real_corpus("mtsamples"))
    texts = {split: set(dataset["text"]) for split, dataset in dd.items()}
    assert sum(len(dataset) for dataset in dd.values()) == 4966  # 4999 notes, 33 without a transcription
    assert sum(len(t) for t in texts.values()) == 2357  # distinct texts, none shared between splits
    specialties = {json.loads(m)["specialty"] for dataset in dd.values() for m in dataset["meta"]}
    assert len(specialties) == 40


@pytest.mark.parametrize(
    ("split", "docs", "chars"),
    [
        ("train", 67, 177_502),
        ("validation", 20, 54_323),
        ("test1", 40, 103_286),
        ("test2", 40, 109_257),
        ("test3", 40, 111_846),
    ],
)
def test_real_aci_bench_counts(split: str, docs: int, chars: int) -> None:
    dataset = corpora.load("aci_bench", split, corpus_dir=real_corpus("aci_bench"))
    assert len(dataset) == docs
    assert sum(len(text) for text in dataset["text"]) == chars
