"""Literature summaries: MeSH naming, statements and their flags, abstract-level pairs, aggregation,
the CLI, and document-level CID pairs on BC5CDR."""

import json
from pathlib import Path

import pytest

from corpora.base import DEFAULT_ROOT
from nlp.cli import main
from nlp.components.mesh_linker import MeshGazetteer, mesh_key
from nlp.evaluation.cid import bc5cdr_abstracts, evaluate_cid, score_pairs
from nlp.literature import Abstract, ReadFailure, read_abstracts
from nlp.literature.pairs import FEATURES, candidates, concept, load_pair_model
from nlp.literature.summarize import aggregate, analyse, summarize
from nlp.models import resolve_model_dir
from nlp.pipeline import load
from nlp.records import Code, Mention, NoteRecord, Relation

SAMPLES = Path(__file__).resolve().parent.parent / "corpora" / "samples_literature"
HAS_BC5CDR = (DEFAULT_ROOT / "bc5cdr").is_dir()
# measured 0.428 (P 0.450, R 0.409); 0.458 before the ADE tagger, whose sentence-level relations are
# more precise (0.632 against 0.523) but fewer for the pair model to build on (README, Literature)
CID_TEST_FLOOR = 0.41


@pytest.fixture(scope="module")
def literature():
    return load("literature").warm_up()


@pytest.fixture(scope="module")
def pair_model():
    return load_pair_model()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Non-Hodgkin's lymphoma", "non hodgkin s lymphoma"),
        ("  ACE   inhibitor ", "ace inhibitor"),
        ("5-FU", "5 fu"),
    ],
)
def test_mesh_key(text: str, key: str) -> None:
    assert mesh_key(text) == key


@pytest.mark.parametrize(
    ("text", "category", "mesh_id"),
    [
        ("angioedema", "disease", "D000799"),
        ("Angioedemas", "disease", "D000799"),  # singular of the last word
        ("cardiotoxicity", "disease", "D066126"),
        ("Cerebral Hemorrhage", "disease", "D002543"),  # "Hemorrhage, Cerebral" turned round
        ("lisinopril", "chemical", "D017706"),
        ("angioedema", "chemical", None),  # categories do not mix
        ("not a disease at all", "disease", None),
    ],
)
def test_mesh_gazetteer_lookup(text: str, category: str, mesh_id: str | None) -> None:
    assert MeshGazetteer(resolve_model_dir("mesh-cdr")).lookup(text, category) == mesh_id


def test_mesh_ancestors_are_broader_diseases() -> None:
    gazetteer = MeshGazetteer(resolve_model_dir("mesh-cdr"))
    assert "D002561" in gazetteer.ancestors("D002543")  # cerebral hemorrhage < cerebrovascular disorders
    assert gazetteer.ancestors("D017706") == set()  # a chemical has no tree here


def test_literature_pipeline_names_mentions_in_mesh(literature) -> None:
    record = literature.annotate("Lisinopril-induced angioedema resolved. Cardiotoxicity occurred.")
    mesh = {m.text: next(c.code for c in m.codes if c.system == "mesh") for m in record.mentions}
    assert mesh == {"Lisinopril": "D017706", "angioedema": "D000799", "Cardiotoxicity": "D066126"}


def _abstract(pmid: str, abstract: str, *, title: str = "A report.", mesh: tuple[str, ...] = ()) -> Abstract:
    return Abstract(pmid=pmid, title=title, abstract=abstract, mesh_terms=mesh)


@pytest.mark.parametrize(
    ("abstract", "mesh", "drug", "reaction", "flags"),
    [
        ("A 60-year-old man developed lisinopril-induced angioedema.", (), "lisinopril", "angioedema", ()),
        (
            "No hepatotoxicity was observed in the 40 adults who received isoniazid.",
            (),
            "isoniazid",
            "hepatotoxicity",
            ("negated",),
        ),
        (
            "Amiodarone may cause pulmonary fibrosis in older adults.",
            (),
            "Amiodarone",
            "pulmonary fibrosis",
            ("speculative",),
        ),
        (
            "Doxorubicin-induced cardiotoxicity was measured by echocardiography.",
            ("Animals", "Rats"),
            "Doxorubicin",
            "cardiotoxicity",
            ("animal",),
        ),
        ("Rats given cisplatin developed nephrotoxicity.", (), "cisplatin", "nephrotoxicity", ("animal",)),
    ],
)
def test_statements_and_flags(literature, abstract, mesh, drug, reaction, flags) -> None:
    analysis = analyse(literature, _abstract("1", abstract, mesh=mesh))
    found = {(s.evidence.drug_text, s.evidence.reaction_text): s.evidence.flags for s in analysis.statements}
    assert found[(drug, reaction)] == flags
    evidence = next(s.evidence for s in analysis.statements if s.evidence.drug_text == drug)
    text = analysis.abstract.text
    assert text[evidence.sentence_start :].startswith(evidence.sentence)
    assert text[evidence.drug_start : evidence.drug_end] == drug


def test_an_unreadable_abstract_is_an_error_not_an_exception(literature) -> None:
    analysis = analyse(literature, Abstract(pmid="9", title="", abstract="\x00"))
    assert analysis.error is not None and analysis.error[0] == "nul_byte"


def test_aggregate_counts_abstracts_per_pair(literature) -> None:
    analyses = [
        analyse(literature, _abstract("1", "She developed lisinopril-induced angioedema.")),
        analyse(literature, _abstract("2", "Angioedema due to lisinopril was seen in two patients.")),
        analyse(literature, _abstract("3", "No angioedema was seen with lisinopril.")),
        analyse(literature, Abstract(pmid="4", title="", abstract="\x00")),
    ]
    summary = aggregate(analyses, pipeline="test")
    pair = next(p for p in summary.pairs if (p.drug, p.reaction) == ("lisinopril", "angioedema"))
    assert (pair.abstracts, pair.negated, pair.pmids) == (2, 1, ("1", "2", "3"))
    assert [e.pmid for e in pair.evidence] == ["1", "2", "3"]
    assert summary.abstracts == 4 and [f[:2] for f in summary.failed] == [("4", "nul_byte")]
    assert [s.pmid for s in summary.summaries] == ["1", "2", "3"]


def _mention(
    i: int, label: str, text: str, start: int, mesh: str | None, assertion: str = "present"
) -> Mention:
    codes = (Code(system="mesh", code=mesh),) if mesh else ()
    return Mention(
        id=f"m{i}",
        label=label,
        text=text,
        start=start,
        end=start + len(text),
        section=None,
        assertion=assertion,
        subject="patient",
        codes=codes,
        source="test",
    )


def test_candidates_features() -> None:
    text = "Cocaine and stroke.\nCocaine users had a cerebral hemorrhage. No seizures occurred."
    mentions = (
        _mention(0, "DRUG", "Cocaine", 0, "D003042"),
        _mention(1, "PROBLEM", "stroke", 12, "D020521"),
        _mention(2, "DRUG", "Cocaine", 20, "D003042"),
        _mention(3, "PROBLEM", "cerebral hemorrhage", 40, "D002543"),
        _mention(4, "PROBLEM", "seizures", 64, "D012640", assertion="absent"),
    )
    record = NoteRecord(
        note_id="x",
        pipeline="test",
        text_length=len(text),
        mentions=mentions,
        relations=(Relation(type="adverse_reaction", source_id="m2", target_id="m3", method="rule:x"),),  # type: ignore[call-arg]
    )
    sentences = [(0, 19), (20, 60), (61, len(text))]
    found = {
        (c.drug_key, c.reaction_key): dict(zip(FEATURES, c.features, strict=True))
        for c in candidates(record, sentences, text=text, title_end=19, broader={"D002543": {"D020521"}})
    }
    assert set(found) == {("mesh:D003042", f"mesh:{d}") for d in ("D020521", "D002543", "D012640")}
    hemorrhage = found[("mesh:D003042", "mesh:D002543")]
    stroke = found[("mesh:D003042", "mesh:D020521")]
    seizures = found[("mesh:D003042", "mesh:D012640")]
    assert (hemorrhage["relation_rule"], hemorrhage["relation_model"]) == (1.0, 0.0)
    assert (stroke["relation_rule"], stroke["reaction_in_title"], stroke["drug_in_title"]) == (0.0, 1.0, 1.0)
    assert stroke["reaction_is_broader"] == 1.0 and hemorrhage["reaction_is_broader"] == 0.0
    assert seizures["reaction_negated"] == 1.0 and hemorrhage["reaction_negated"] == 0.0


def test_pair_model_ranks_a_stated_pair_above_a_bystander(literature, pair_model) -> None:
    analysis = analyse(
        literature,
        _abstract(
            "1",
            "A woman with asthma developed lisinopril-induced angioedema. Her asthma was controlled.",
            title="Lisinopril-induced angioedema.",
        ),
        pair_model,
    )
    scores = {(p.drug_key, p.reaction_key): p for p in analysis.pairs}
    stated = scores[("mesh:D017706", "mesh:D000799")]
    bystander = scores[("mesh:D017706", "mesh:D001249")]
    assert stated.accepted and stated.probability > bystander.probability


def test_summarize_passes_read_failures_through(literature) -> None:
    items = [
        _abstract("1", "She developed lisinopril-induced angioedema."),
        ReadFailure("in.jsonl:2", "malformed_record", "line 2 is not JSON"),
    ]
    summary = summarize(items, pipeline=literature, pair_model=None)
    assert summary.abstracts == 1 and summary.failed == (
        ("in.jsonl:2", "malformed_record", "line 2 is not JSON"),
    )
    assert summary.pipeline == literature.id  # seconds are rounded to 0.01 s: one short abstract may be 0.0


def test_concept_names_prefer_mesh_and_drugbank_over_icd_displays() -> None:
    mention = _mention(0, "PROBLEM", "Angioedema", 0, None)
    icd = mention.model_copy(
        update={"codes": (Code(system="icd10cm", code="T78.3XXA", display="Angioneurotic edema"),)}
    )
    assert concept(icd) == ("icd10cm:T78.3XXA", "angioedema")
    mesh = mention.model_copy(update={"codes": (Code(system="mesh", code="D000799", display="Angioedema"),)})
    assert concept(mesh) == ("mesh:D000799", "angioedema")
    assert concept(mention) == ("text:angioedema", "angioedema")


@pytest.mark.slow
def test_cli_summarizes_the_bundled_samples(tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert main(["literature", "summarize", str(SAMPLES / "synthetic_pubmed.xml"), "-o", str(out), "-q"]) == 0
    assert {p.name for p in out.iterdir()} >= {"report.html", "pairs.csv", "summary.json"}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["abstracts"] == len(list(read_abstracts([SAMPLES / "synthetic_pubmed.xml"])))
    reported = {(p["drug"], p["reaction"]) for p in summary["pairs"] if p["abstracts"]}
    assert ("lisinopril", "angioedema") in reported
    assert "abstracts:" in capsys.readouterr().out


def test_cli_missing_input_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["literature", "summarize", str(tmp_path / "absent.xml"), "-o", str(tmp_path / "r")]) == 2
    assert "absent.xml" in capsys.readouterr().err


def test_score_pairs() -> None:
    report = score_pairs([{("a", "b"), ("a", "c")}, set()], [{("a", "b")}, {("d", "e")}])
    assert (report["P"], report["R"], report["tp"], report["gold"], report["predicted"]) == (
        0.5,
        0.5,
        1,
        2,
        2,
    )


@pytest.mark.skipif(not HAS_BC5CDR, reason="BC5CDR is not in ../shared/corpora")
def test_bc5cdr_abstracts_match_pubtator_offsets() -> None:
    abstracts, gold = bc5cdr_abstracts("test", limit=20)
    assert len(abstracts) == 20 and all(gold)
    assert all(len(a.text) == len(a.title) + 1 + len(a.abstract) for a in abstracts)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BC5CDR, reason="BC5CDR is not in ../shared/corpora")
def test_cid_on_the_bc5cdr_test_split_keeps_its_floor() -> None:
    report = evaluate_cid("test", workers=2)
    assert report["cid"]["gold"] == 1066 and report["errors"] == 0
    assert report["cid"]["F1"] >= CID_TEST_FLOOR


@pytest.mark.skipif(not HAS_BC5CDR, reason="BC5CDR is not in ../shared/corpora")
def test_benchmark_times_the_command_path() -> None:
    from nlp.literature.benchmark import run

    report = run(5, workers=1)
    assert (report["abstracts"], report["failed"], report["workers"]) == (5, 0, 1)
    assert report["seconds"] > 0 and report["time_vs_tokenizer"] > 1


@pytest.mark.skipif(not HAS_BC5CDR, reason="BC5CDR is not in ../shared/corpora")
def test_gazetteer_coverage_of_the_test_split() -> None:
    from nlp.train.mesh_gazetteer import coverage

    found = coverage(resolve_model_dir("mesh-cdr"), "test")
    assert found["chemical"] == {"right": 3864, "wrong": 84, "unnamed": 1395}  # the model card's figures
    assert found["disease"] == {"right": 3370, "wrong": 65, "unnamed": 865}
