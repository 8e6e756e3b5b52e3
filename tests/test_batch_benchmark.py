"""The batch benchmark: its figures and targets, its memory poller, its inputs, and one small real run."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nlp import batch_benchmark as bb
from tests.conftest import FIXTURE_CORPORA, real_corpus

FIXTURE_MTSAMPLES = FIXTURE_CORPORA / "mtsamples"


@pytest.mark.parametrize(
    ("notes_per_second", "notes", "core_hours"),
    [
        (10.0, 10_000_000, 277.8),
        (1.0, 10_000_000, 2777.8),
        (2.5, 36_000, 4.0),
    ],
)
def test_projected_core_hours(notes_per_second: float, notes: int, core_hours: float) -> None:
    assert bb.projected_core_hours(notes_per_second, notes) == core_hours


@pytest.mark.parametrize("notes_per_second", [0.0, -1.0])
def test_projected_core_hours_needs_a_positive_throughput(notes_per_second: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        bb.projected_core_hours(notes_per_second)


def _manifest(**changes: Any) -> dict[str, Any]:
    manifest = {
        "status": "COMPLETED",
        "input": 20,
        "failed": 0,
        "words": 8000,
        "seconds": 4.0,
        "load_seconds": 3.5,
        "worker_restarts": 0,
    }
    return {**manifest, **changes}


def test_runner_figures() -> None:
    figures = bb.runner_figures(_manifest(), wall_seconds=10.0, notes=20)
    assert figures["notes_per_second"] == 5.0  # the runner's own annotate seconds
    assert figures["words_per_second"] == 2000
    assert figures["notes_per_second_wall"] == 2.0  # start-up and load included
    assert (figures["load_seconds"], figures["errors"], figures["status"]) == (3.5, 0, "COMPLETED")


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (_manifest(input=19), "counts 19 of 20 notes"),
        (_manifest(seconds=0.0), "reports 0.0 s"),
        ({k: v for k, v in _manifest().items() if k != "words"}, "no \\['words'\\]"),
    ],
)
def test_runner_figures_refuse_a_manifest_that_breaks_the_contract(
    manifest: dict[str, Any], message: str
) -> None:
    with pytest.raises(bb.BatchBenchmarkError, match=message):
        bb.runner_figures(manifest, wall_seconds=2.0, notes=20)


def _run(notes_per_second: float, wall: float) -> dict[str, Any]:
    return {
        "notes_per_second": notes_per_second,
        "notes_per_second_wall": round(100 / wall, 2),
        "words_per_second": notes_per_second * 400,
        "wall_seconds": wall,
        "annotate_seconds": round(100 / notes_per_second, 2),
        "peak_rss_mb_per_worker": 900.0,
    }


@pytest.mark.parametrize(
    ("one", "two", "medspacy", "spark", "met"),
    [
        (
            _run(10.0, 14.0),
            _run(18.0, 8.0),
            {"seconds": 6.0, "load_seconds": 1.0},
            {"job_seconds": 10.0, "session_start_seconds": 5.0},
            {
                "scaling_2_workers_at_least_1.7": True,
                "time_within_2x_of_plain_medspacy": True,
                "spark_overhead_at_most_30_percent": True,
            },
        ),
        (
            _run(10.0, 14.0),
            _run(16.0, 8.0),
            {"seconds": 4.0, "load_seconds": 1.0},
            {"job_seconds": 10.5, "session_start_seconds": 5.0},
            {
                "scaling_2_workers_at_least_1.7": False,
                "time_within_2x_of_plain_medspacy": False,
                "spark_overhead_at_most_30_percent": False,
            },
        ),
        (_run(10.0, 14.0), _run(17.0, 8.0), None, None, {"scaling_2_workers_at_least_1.7": True}),
    ],
)
def test_targets(
    one: dict[str, Any],
    two: dict[str, Any],
    medspacy: dict[str, Any] | None,
    spark: dict[str, Any] | None,
    met: dict[str, bool],
) -> None:
    report: dict[str, Any] = {
        "runner": {"workers_1": one, "workers_2": two},
        "medspacy": medspacy,
        "spark": spark,
    }
    report["comparison"] = bb.comparison(report)
    targets = bb.targets_met(report)
    assert {name: target["met"] for name, target in targets.items()} == met
    assert report["comparison"]["per_core"]["projected_core_hours_10000000_notes"] == 277.8


def test_comparison_figures() -> None:
    report: dict[str, Any] = {
        "runner": {"workers_1": _run(10.0, 14.0), "workers_2": _run(18.0, 8.0)},
        "medspacy": {"seconds": 5.0, "load_seconds": 2.0},
        "spark": {"job_seconds": 10.0, "session_start_seconds": 6.0},
    }
    figures = bb.comparison(report)
    assert figures["scaling_2_to_1"] == 1.8
    assert figures["ours_to_medspacy_time"] == 2.0  # 10 s annotating against 5 s
    assert figures["ours_to_medspacy_time_wall"] == 2.0  # 14 s against 5 + 2 s
    assert figures["spark_overhead_percent"] == 25.0  # 10 s against the 2-worker runner's 8 s wall
    assert figures["spark_overhead_percent_with_session_start"] == 100.0


@pytest.mark.parametrize(
    ("start", "end", "contended"),
    [
        ([0.5, 0.4, 0.3], [1.9, 1.0, 0.5], False),
        ([7.4, 7.3, 4.6], [0.5, 1.0, 2.0], True),
        ([0.5, 0.4, 0.3], [2.1, 1.0, 0.5], True),
    ],
)
def test_is_contended(start: list[float], end: list[float], contended: bool) -> None:
    machine = {"cpus_usable": 2, "load_average_1_5_15": start, "load_average_at_end_1_5_15": end}
    assert bb.is_contended(machine) is contended


def test_summary_names_every_run_and_target() -> None:
    report: dict[str, Any] = {
        "machine": {
            "machine": "x86_64",
            "cpus_usable": 2,
            "memory_gb": 23.5,
            "python": "3.11.7",
            "load_average_1_5_15": [7.4, 7.3, 4.6],
            "load_average_at_end_1_5_15": [6.7, 6.7, 4.9],
        },
        "config": {"pipeline": "default", "format": "fhir"},
        "corpus": {"notes": 100, "words": 40000, "chars": 250000},
        "runner": {
            "workers_1": {**_run(10.0, 14.0), "cpu_cores_busy": 0.9},
            "workers_2": {**_run(18.0, 8.0), "cpu_cores_busy": 1.8},
        },
        "medspacy": {
            "seconds": 6.0,
            "load_seconds": 1.0,
            "notes_per_second": 16.67,
            "words_per_second": 6667,
        },
        "spark": None,
    }
    report["comparison"] = bb.comparison(report)
    report["targets"] = bb.targets_met(report)
    summary = bb.format_summary(report)
    for expected in (
        "runner workers 1",
        "runner workers 2",
        "plain medspaCy, 1 process",
        "10,000,000 notes = 277.8 core-hours",
        "target scaling_2_workers_at_least_1.7: met (1.8)",
        "target time_within_2x_of_plain_medspacy: met (1.67)",
        "WARNING: the machine was busy",
    ):
        assert expected in summary
    assert "Spark" not in summary


def test_tree_memory_sees_a_child_process_grow() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; block = bytearray(80 * 2**20); time.sleep(1.5)"],
    )
    with bb.TreeMemory(child.pid, every=0.05) as memory:
        child.wait()
    summary = memory.summary(worker_marker="bytearray")
    assert summary["peak_rss_mb_per_worker"] == summary["peak_rss_mb_largest_process"] >= 80
    assert summary["peak_rss_mb_tree"] >= summary["peak_rss_mb_largest_process"]
    assert summary["processes"][0]["pid"] == child.pid
    assert summary["processes"][0]["command"].startswith("python")


def test_tree_memory_of_a_finished_process_is_empty() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    memory = bb.TreeMemory(child.pid)
    memory.sample()
    assert memory.summary("python") == {
        "peak_rss_mb_per_worker": None,
        "peak_rss_mb_largest_process": None,
        "peak_rss_mb_tree": None,
        "processes": [],
    }


@pytest.mark.parametrize(("limit", "ids"), [(None, ["1", "2", "3"]), (2, ["1", "2"])])
def test_mtsamples_notes_in_id_order(limit: int | None, ids: list[str]) -> None:
    pairs = bb.mtsamples_notes(limit, FIXTURE_MTSAMPLES)  # note 4 has no transcription
    assert [note_id for note_id, _ in pairs] == ids
    assert pairs[0][1].startswith("SUBJECTIVE:,  Here for blood pressure check.")


def test_write_notes(tmp_path: Path) -> None:
    notes = bb.write_notes([("a", "Denies chest pain."), ("b", "HTN.\nOn lisinopril")], tmp_path / "n.jsonl")
    lines = [json.loads(line) for line in notes.path.read_text("utf-8").splitlines()]
    assert lines == [{"id": "a", "text": "Denies chest pain."}, {"id": "b", "text": "HTN.\nOn lisinopril"}]
    assert (notes.words, notes.chars) == (6, 36)


@pytest.mark.parametrize(
    ("text", "mention", "negated"),
    [
        ("The patient denies chest pain.", "chest pain", True),
        ("History of hypertension, on aspirin daily.", "aspirin", False),
    ],
)
def test_medspacy_baseline(text: str, mention: str, negated: bool) -> None:
    doc = bb.build_medspacy_baseline()(text)
    found = {ent.text.lower(): bool(ent._.is_negated) for ent in doc.ents}
    assert found[mention] is negated


@pytest.mark.slow
def test_small_run_writes_every_figure(tmp_path: Path) -> None:
    corpus = real_corpus("mtsamples")
    output = tmp_path / "batchbench.json"
    command = [sys.executable, "-m", "nlp.batch_benchmark", "--limit", "10", "--pipeline", "lexicon"]
    command += ["--corpus-dir", str(corpus)]
    done = subprocess.run(
        [*command, "--skip-spark", "--output", str(output)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "target scaling_2_workers_at_least_1.7" in done.stderr  # the summary
    report = json.loads(output.read_text("utf-8"))
    assert json.loads(done.stdout) == report
    assert {"machine", "config", "corpus", "runner", "medspacy", "spark", "comparison", "targets"} <= set(
        report
    )
    assert report["spark"] is None
    assert report["corpus"]["notes"] == 10
    assert report["machine"]["cpus_usable"] >= 1
    for workers in (1, 2):
        run = report["runner"][f"workers_{workers}"]
        assert run["workers"] == workers
        assert run["notes"] == 10 and run["errors"] == 0
        assert run["notes_per_second"] > 0 and run["words_per_second"] > 0
        assert run["peak_rss_mb_largest_process"] > 100  # a loaded pipeline
        assert run["cpu_seconds"] > 0
    assert report["medspacy"]["notes"] == 10 and report["medspacy"]["mentions"] > 0
    figures = report["comparison"]
    assert figures["per_core"]["projected_core_hours_10000000_notes"] > 0
    assert figures["scaling_2_to_1"] > 0 and figures["ours_to_medspacy_time"] > 0
    assert set(report["targets"]) == {"scaling_2_workers_at_least_1.7", "time_within_2x_of_plain_medspacy"}
