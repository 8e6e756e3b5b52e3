"""Linking mention text to codes: the KB, thresholds, labels, the disk cache and the spaCy component."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

import nlp.components.linker  # noqa: F401  (registers clinical_linker)
from nlp import linking, terminology
from nlp.components.lexicon import SPAN_GROUP
from nlp.components.tokenizer import build_tokenizer
from nlp.errors import ConfigError, ResourceError
from nlp.evaluation import linking as evaluation
from nlp.pipeline import DEFAULT_CACHE_DIR
from nlp.terminology import Concept, Entry

HTN = Concept("PROBLEM", "hypertension", (("icd10cm", "I10", "Essential (primary) hypertension"),), True)
T2DM = Concept(
    "PROBLEM",
    "type 2 diabetes mellitus",
    (("icd10cm", "E11.9", "Type 2 diabetes mellitus without complications"),),
)
PE = Concept(
    "PROBLEM",
    "Other pulmonary embolism without acute cor pulmonale",
    (("icd10cm", "I26.99", "Other pulmonary embolism without acute cor pulmonale"),),
    source="icd10cm",
)
CHILLS_ICD = Concept("PROBLEM", "Chills (without fever)", (("icd10cm", "R68.83", "Chills (without fever)"),))
CHILLS_HPO = Concept("PROBLEM", "Chills", (("hpo", "HP:0025143", "Chills"),), source="hpo")
SEIZURE = Concept("PROBLEM", "Seizure", (("hpo", "HP:0001250", "Seizure"),), source="hpo")
INSULIN_RESISTANCE = Concept("PROBLEM", "Insulin resistance", (("hpo", "HP:0000855", "Insulin resistance"),))
FUROSEMIDE = Concept("DRUG", "Furosemide", (("drugbank", "DB00695", "Furosemide"),), source="drugs")
INSULIN = Concept("DRUG", "Insulin human", (("drugbank", "DB00030", "Insulin human"),), source="drugs")
STATIN = Concept("DRUG_CLASS", "statin")  # no code: not in the KB

RANKED: list[tuple[int, Entry]] = [
    (0, ("hypertension", HTN, 0)),
    (0, ("high blood pressure", HTN, 0)),
    (0, ("type 2 diabetes mellitus", T2DM, 0)),
    (0, ("diabetes mellitus type ii", T2DM, 0)),
    (0, ("statin", STATIN, 0)),
    (1, ("Pulmonary embolism", PE, 3)),
    (1, ("Chills", CHILLS_ICD, 2)),
    (2, ("Chills", CHILLS_HPO, 0)),
    (2, ("Seizure", SEIZURE, 0)),
    (2, ("Seizures", SEIZURE, 1)),
    (2, ("Insulin resistance", INSULIN_RESISTANCE, 0)),
    (3, ("furosemide", FUROSEMIDE, 0)),
    (3, ("lasix", FUROSEMIDE, 1)),
    (3, ("insulin", INSULIN, 0)),
]
ABBREVIATIONS: list[Entry] = [("HTN", HTN, 0), ("DM2", T2DM, 0)]
CODES_BY_LABEL = {
    "PROBLEM": {"I10", "E11.9", "I26.99", "R68.83", "HP:0025143", "HP:0001250", "HP:0000855"},
    "DRUG": {"DB00695", "DB00030"},
}


@pytest.fixture(scope="module")
def small() -> linking.Linker:
    return linking.build(linking.concepts_from_entries(RANKED, ABBREVIATIONS))


@pytest.fixture
def fixture_vocabulary(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """``linking.load`` reads the fixture entries; yields a list that counts the reads (= builds)."""
    reads: list[int] = []

    def source_entries(sources=terminology.SOURCES):
        reads.append(1)
        return RANKED, ABBREVIATIONS

    monkeypatch.setattr(terminology, "source_entries", source_entries)
    linking.forget()
    yield reads
    linking.forget()


def first_code(linker: linking.Linker, text: str, label: str, **kwargs) -> str | None:
    found = linker.link([text], [label], **kwargs)[0]
    return found[0].code if found else None


# --------------------------------------------------------------------------- KB
def test_kb_has_one_concept_per_coded_label_and_code() -> None:
    concepts = {c.concept_id: c for c in linking.concepts_from_entries(RANKED, ABBREVIATIONS)}
    assert set(concepts) == {
        f"{system}|{code}"
        for _, (_, concept, _) in RANKED
        for system, code, _ in concept.codes  # STATIN has no code
    }
    htn = concepts["icd10cm|I10"]
    assert (htn.label, htn.display) == ("PROBLEM", "Essential (primary) hypertension")
    assert set(htn.aliases) == {
        "hypertension",
        "high blood pressure",
        "htn",
        "essential (primary) hypertension",
    }
    assert concepts["drugbank|DB00695"].label == "DRUG"


def test_kb_size(small: linking.Linker) -> None:
    assert small.n_concepts == 9
    # ICD-10-CM: 4 for I10, 4 for E11.9, 2 each for I26.99 and R68.83; HPO: 4; DrugBank: 4
    assert small.n_aliases == 12 + 4 + 4


# --------------------------------------------------------------------------- linking
@pytest.mark.parametrize(
    ("text", "label", "code"),
    [
        ("HTN", "PROBLEM", "I10"),  # abbreviation, exact
        ("htn", "PROBLEM", "I10"),
        ("High  Blood Pressure", "PROBLEM", "I10"),  # case and spacing do not matter
        ("DM2", "PROBLEM", "E11.9"),
        ("lasix", "DRUG", "DB00695"),
        ("Lasix", "DRUG", "DB00695"),
        ("seizures", "PROBLEM", "HP:0001250"),
        ("pulmonary embolus", "PROBLEM", "I26.99"),  # approximate
        ("diabetes mellitus type 2", "PROBLEM", "E11.9"),
        ("insulin", "DRUG", "DB00030"),
        ("lasix", "PROBLEM", None),  # a drug name is no problem code
        ("hypertension", "DRUG", None),
        ("PE", "PROBLEM", None),  # 2-3 letters: exact aliases only
        ("xyzzy", "PROBLEM", None),
        ("seizure qqxxzz", "PROBLEM", None),  # 3-grams no alias has still count against the match
        ("hypertension", "TEST", None),  # a label without concepts
        ("", "PROBLEM", None),
    ],
)
def test_link(small: linking.Linker, text: str, label: str, code: str | None) -> None:
    assert first_code(small, text, label) == code


@pytest.mark.parametrize(("label", "codes"), sorted(CODES_BY_LABEL.items()))
@pytest.mark.parametrize("text", ["insulin", "insulin resistance", "lasix", "chills", "pulmonary embolus"])
def test_candidates_have_the_mention_label(
    small: linking.Linker, text: str, label: str, codes: set[str]
) -> None:
    found = small.link([text], [label], k=3, threshold=0.01)[0]
    assert {c.code for c in found} <= codes


@pytest.mark.parametrize("text", ["pulmonary embolus", "type 2 diabetes", "seizure disorder"])
def test_threshold_drops_weaker_candidates(small: linking.Linker, text: str) -> None:
    best = small.link([text], ["PROBLEM"], threshold=0.01)[0][0]
    assert 0.0 < best.score < 1.0
    assert first_code(small, text, "PROBLEM", threshold=best.score) == best.code
    assert first_code(small, text, "PROBLEM", threshold=min(1.0, best.score + 0.01)) is None


@pytest.mark.parametrize("threshold", [0.01, 0.3, 0.6])
def test_candidates_best_first_and_above_threshold(small: linking.Linker, threshold: float) -> None:
    for found in small.link(["chills", "pulmonary embolus", "seizure"], ["PROBLEM"] * 3, threshold=threshold):
        scores = [c.score for c in found]
        assert scores == sorted(scores, reverse=True)
        assert all(s >= threshold for s in scores)


@pytest.mark.parametrize(("k", "codes"), [(1, ["R68.83"]), (2, ["R68.83", "HP:0025143"])])
def test_shared_alias_prefers_the_better_source(small: linking.Linker, k: int, codes: list[str]) -> None:
    found = small.link(["Chills"], ["PROBLEM"], k=k)[0]
    assert [c.code for c in found] == codes  # ICD-10-CM (priority 1) before HPO (priority 2)
    assert all(c.score == 1.0 for c in found)


def test_systems_filter(small: linking.Linker) -> None:
    found = small.link(["chills"], ["PROBLEM"], systems={"hpo"})[0]
    assert [(c.system, c.code, c.display) for c in found] == [("hpo", "HP:0025143", "Chills")]


def test_texts_and_labels_must_pair(small: linking.Linker) -> None:
    with pytest.raises(ValueError, match="labels"):
        small.link(["lasix"], [])


# --------------------------------------------------------------------------- cache
def test_cache_is_reused(tmp_path: Path, fixture_vocabulary: list[int]) -> None:
    first = linking.load(tmp_path)
    folder = tmp_path / f"linker-{linking.cache_key(terminology.SOURCES)}"
    assert (folder / "manifest.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p != folder]  # no temporary folder left behind
    linking.forget()
    second = linking.load(tmp_path)
    assert fixture_vocabulary == [1]  # read the vocabularies once
    assert second is not first
    texts, labels = ["lasix", "pulmonary embolus", "HTN"], ["DRUG", "PROBLEM", "PROBLEM"]
    assert second.link(texts, labels) == first.link(texts, labels)
    assert linking.load(tmp_path) is second  # and memoised in the process


@pytest.mark.parametrize("damaged", ["kb.msgpack", "manifest.json", "shard0/nmslib_index.bin"])
def test_corrupt_cache_is_rebuilt(
    tmp_path: Path, fixture_vocabulary: list[int], caplog: pytest.LogCaptureFixture, damaged: str
) -> None:
    linking.load(tmp_path)
    folder = tmp_path / f"linker-{linking.cache_key(terminology.SOURCES)}"
    path = folder / damaged
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    linking.forget()
    linker = linking.load(tmp_path)
    assert "rebuilding" in caplog.text
    assert fixture_vocabulary == [1, 1]
    assert first_code(linker, "lasix", "DRUG") == "DB00695"
    linking.forget()
    linking.load(tmp_path)  # the rebuilt cache is sound
    assert fixture_vocabulary == [1, 1]


# --------------------------------------------------------------------------- component
def make_nlp(cache_dir: Path, **config) -> Language:
    nlp = spacy.blank("en")
    nlp.tokenizer = build_tokenizer(nlp)
    nlp.add_pipe("clinical_sentences")
    nlp.add_pipe("clinical_abbreviations")
    nlp.add_pipe("clinical_linker", config={"cache_dir": str(cache_dir), **config})
    return nlp


def mention(doc: Doc, text: str, label: str, source: str, codes: tuple = ()) -> Span:
    """A span over the last occurrence of ``text``, as a mention producer would set it."""
    start = doc.text.rindex(text)
    span = doc.char_span(start, start + len(text), label=label)
    assert span is not None
    span._.source = source
    span._.codes = codes
    return span


def annotate(nlp: Language, text: str, spans: list[tuple[str, str, str, tuple]]) -> Doc:
    """Run the components before the linker, add ``(text, label, source, codes)`` spans, run the linker."""
    doc = nlp.make_doc(text)
    for name in ("clinical_sentences", "clinical_abbreviations"):
        doc = nlp.get_pipe(name)(doc)
    doc.spans[SPAN_GROUP] = [mention(doc, *spec) for spec in spans]
    return nlp.get_pipe("clinical_linker")(doc)


def codes_of(doc: Doc) -> dict[str, list[str]]:
    return {s.text: [c[1] for c in s._.codes] for s in doc.spans[SPAN_GROUP]}


def test_component_codes_model_mentions_only(tmp_path: Path, fixture_vocabulary: list[int]) -> None:
    kept = (("icd10cm", "I10", "Essential (primary) hypertension", 1.0),)
    doc = annotate(
        make_nlp(tmp_path),
        "Pulmonary embolus and HTN, seizure, lasix given. Worse chills.",
        [
            ("Pulmonary embolus", "PROBLEM", "model:ner", ()),
            ("HTN", "PROBLEM", "lexicon:curated", kept),
            ("seizure", "PROBLEM", "lexicon:hpo", ()),  # not from a model: left alone
            ("lasix", "DRUG", "model:ner", ()),
            ("Worse chills", "PROBLEM", "model+lexicon:icd10cm", (("icd10cm", "R68.83", "Chills", 1.0),)),
        ],
    )
    assert codes_of(doc) == {
        "Pulmonary embolus": ["I26.99"],
        "HTN": ["I10"],
        "seizure": [],
        "lasix": ["DB00695"],
        "Worse chills": ["R68.83"],
    }
    pe = doc.spans[SPAN_GROUP][0]
    assert pe._.codes[0][2] == "Other pulmonary embolism without acute cor pulmonale"
    assert linking.DEFAULT_THRESHOLD <= pe._.codes[0][3] < 1.0


@pytest.mark.parametrize(("k", "n_codes"), [(1, 1), (2, 2), (3, 2)])
def test_component_k(tmp_path: Path, fixture_vocabulary: list[int], k: int, n_codes: int) -> None:
    doc = annotate(make_nlp(tmp_path, k=k), "Chills today.", [("Chills", "PROBLEM", "model:ner", ())])
    assert len(doc.spans[SPAN_GROUP][0]._.codes) == n_codes


def test_component_links_a_defined_short_form_by_its_long_form(
    tmp_path: Path, fixture_vocabulary: list[int]
) -> None:
    doc = annotate(
        make_nlp(tmp_path),
        "Known pulmonary embolism (PE) in 2019. PE recurred.",
        [("PE", "PROBLEM", "model:ner", ())],
    )
    (span,) = doc.spans[SPAN_GROUP]
    assert [c[1] for c in span._.codes] == ["I26.99"]
    assert span._.expansion == "pulmonary embolism"


def test_component_pipe_links_a_batch_in_one_query(
    tmp_path: Path, fixture_vocabulary: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    nlp = make_nlp(tmp_path)
    docs = []
    for text, label in [("lasix", "DRUG"), ("Seizures", "PROBLEM")]:
        doc = nlp.make_doc(f"On {text}.")
        doc.spans[SPAN_GROUP] = [mention(doc, text, label, "model:ner")]
        docs.append(doc)
    linker = nlp.get_pipe("clinical_linker").linker
    calls: list[list[str]] = []
    real_link = linker.link

    def counting_link(texts: list[str], labels: list[str], **kwargs) -> list[list[linking.Candidate]]:
        calls.append(texts)
        return real_link(texts, labels, **kwargs)

    monkeypatch.setattr(linker, "link", counting_link)
    out = list(nlp.get_pipe("clinical_linker").pipe(docs, batch_size=8))
    assert calls == [["lasix", "Seizures"]]
    assert [codes_of(d) for d in out] == [{"lasix": ["DB00695"]}, {"Seizures": ["HP:0001250"]}]


@pytest.mark.parametrize("config", [{"threshold": 0.0}, {"threshold": 1.5}, {"k": 0}, {"k": 4}])
def test_component_rejects_bad_config(config: dict) -> None:
    with pytest.raises(ConfigError):
        spacy.blank("en").add_pipe("clinical_linker", config=config)


def test_component_without_span_group(tmp_path: Path, fixture_vocabulary: list[int]) -> None:
    nlp = make_nlp(tmp_path)
    doc = nlp.get_pipe("clinical_linker")(nlp.make_doc("Nothing found."))
    assert SPAN_GROUP not in doc.spans
    assert fixture_vocabulary == []  # no mention, no KB load


# --------------------------------------------------------------------------- real vocabularies
@pytest.fixture(scope="session")
def real_linker() -> linking.Linker:
    return linking.load(DEFAULT_CACHE_DIR)  # about a minute on the first run, then a second or two


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "label", "code"),
    [
        ("pulm embolism", "PROBLEM", "I26.99"),
        ("DM type II", "PROBLEM", "E11.9"),
        ("lasix", "DRUG", "DB00695"),
        ("HTN", "PROBLEM", "I10"),
        ("congestive heart failure", "PROBLEM", "I50.9"),
        ("metformin hcl", "DRUG", "DB00331"),
        ("lasix", "PROBLEM", None),
        ("PE", "DRUG", None),
    ],
)
def test_real_vocabularies(real_linker: linking.Linker, text: str, label: str, code: str | None) -> None:
    assert first_code(real_linker, text, label) == code


@pytest.mark.slow
def test_real_kb_size(real_linker: linking.Linker) -> None:
    assert real_linker.n_concepts > 50_000
    assert real_linker.n_aliases > 100_000


# --------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize(
    ("code", "gold", "same"),
    [
        ("E11.9", {"E11"}, True),
        ("E11.9", {"E11.65"}, True),
        ("E11.9", {"E08-E13"}, True),  # DisMaNET maps some ids to ICD-10-CM blocks
        ("D58.9", {"D55-D59"}, True),
        ("C50.919", {"C50-C50"}, True),
        ("E14", {"E08-E13"}, False),
        ("I10", {"I11.9", "I12"}, False),
    ],
)
def test_same_category(code: str, gold: set[str], same: bool) -> None:
    assert evaluation.same_category(code, gold) is same


def candidate(code: str, score: float) -> linking.Candidate:
    return linking.Candidate("icd10cm", code, code, score)


def test_tally_scores_top_candidate_and_claims() -> None:
    tally = evaluation.LabelTally()
    tally.add([candidate("I10", 1.0)], frozenset({"I10"}))  # right
    tally.add([candidate("E11.9", 0.8), candidate("E11.65", 0.7)], frozenset({"E11.65"}))  # right at k=2
    tally.add([candidate("J18.9", 0.6)], frozenset({"J18.1"}))  # right category only
    tally.add([], frozenset({"R05"}))  # no candidate
    report = tally.report(0.75, "icd10cm")
    assert (report["mappable"], report["accuracy_at_1"], report["recall_at_k"]) == (4, 0.25, 0.5)
    assert report["accuracy_at_1_category"] == 0.75
    assert report["at_threshold"] == {"precision": 0.5, "recall": 0.25, "f1": 0.3333, "claimed": 2}
    assert tally.claims(0.5, category=True) == (3, 3)


def test_choose_threshold_maximises_pooled_f1() -> None:
    def report(rows: list[tuple[float, int, int]], mappable: int) -> dict:
        return {
            "sweep": [
                {"threshold": t, "claimed": c, "correct": ok, "mappable": mappable} for t, c, ok in rows
            ]
        }

    # at 0.5: P 6/10, R 6/10; at 0.7: P 6/7, R 6/10 (best); at 0.9: P 3/3, R 3/10
    first = report([(0.5, 6, 4), (0.7, 4, 4), (0.9, 2, 2)], 6)
    second = report([(0.5, 4, 2), (0.7, 3, 2), (0.9, 1, 1)], 4)
    assert evaluation.choose_threshold([first, second]) == (0.7, 0.7059)


def test_disease_bridge(tmp_path: Path) -> None:
    folder = tmp_path / evaluation.DISMANET
    folder.mkdir()
    files = {
        "do_to_icd10cm.tsv": "DO_ID\tICD10CM_ID\r\nDOID:9352\tE11\r\nDOID:9352\tE08-E13\r\nDOID:1\tG10\r\n",
        "do_to_mesh.tsv": "DO_ID\tMESH_ID\r\nDOID:9352\tD003924\r\nDOID:2\tD000001\r\n",
        "do_to_omim.tsv": "DO_ID\tOMIM_ID\r\nDOID:1\t143100\r\n",
        "mesh_scr.tsv": "MESH_SCR_ID\tMESH_SCR_NAME\tMESH_ID\nC000001\tSome variant\tD003924\n",
    }
    for name, text in files.items():
        (folder / name).write_bytes(text.encode())
    assert evaluation.disease_bridge(tmp_path) == {
        "MESH:D003924": frozenset({"E11", "E08-E13"}),
        "MESH:C000001": frozenset({"E11", "E08-E13"}),  # supplementary concept -> its descriptor
        "OMIM:143100": frozenset({"G10"}),
        # D000001 has a DO id without ICD-10-CM codes: unmappable, left out
    }


def test_missing_bridge_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match="do_to_icd10cm.tsv"):
        evaluation.disease_bridge(tmp_path)
