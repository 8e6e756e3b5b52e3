"""The load benchmark on a fake pipeline: its numbers, its load runs, and the servers it starts and stops."""

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from nlp.pipeline import PipelineInfo, validate_text
from nlp.records import NoteRecord, text_hash
from service import loadbench
from service.app import create_app, serve_pipeline
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
FAKE_APP_FACTORY = "tests.test_loadbench:create_fake_app"
FAKE_DELAY_SECONDS = 0.02
NOTE = "Denies chest pain. Lisinopril 10 mg daily."


class SleepingPipeline:
    """Validates the text, sleeps :data:`FAKE_DELAY_SECONDS` and returns a record without mentions."""

    id = "notes2fhir-fake@0.0.0"
    info = PipelineInfo(
        name="fake",
        version="0.0.0",
        fingerprint="0123456789ab",
        components=(),
        labels=(),
        max_chars=1000,
    )

    def annotate(
        self,
        text: str,
        *,
        note_id: str | None = None,
        patient_id: str | None = None,
        targets: Sequence[tuple[int, int, str]] | None = None,
    ) -> NoteRecord:
        validate_text(text, 1000)
        time.sleep(FAKE_DELAY_SECONDS)
        return NoteRecord(
            note_id=note_id or "note-fake",
            patient_id=patient_id,
            text_sha256=text_hash(text),
            text_length=len(text),
            pipeline=self.id,
            mentions=(),
        )


def create_fake_app() -> FastAPI:
    """The service on :class:`SleepingPipeline`, settings from the environment (uvicorn's factory)."""
    return create_app(
        Settings(), pipeline_factory=lambda settings: serve_pipeline(SleepingPipeline, settings)
    )


@pytest.fixture
def serve_in_thread() -> Iterator[Any]:
    """Start the fake service in this process with the given ``max_in_flight``; yields its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(max_in_flight: int) -> str:
        app = create_app(Settings(max_in_flight=max_in_flight), pipeline_factory=lambda s: SleepingPipeline())
        port = loadbench.free_port()
        server = uvicorn.Server(uvicorn.Config(app, host=loadbench.HOST, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the in-process server did not start"
            time.sleep(0.05)
        return f"http://{loadbench.HOST}:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([3.0, 1.0, 2.0], 0, 1.0),
        ([3.0, 1.0, 2.0], 100, 3.0),
        ([10.0], 99, 10.0),
        ([float(x) for x in range(1, 101)], 99, 99.01),
        ([float(x) for x in range(1, 101)], 50, 50.5),
        ([0.0, 10.0], 25, 2.5),
    ],
)
def test_percentile_interpolates_between_ranks(values: list[float], q: float, expected: float) -> None:
    assert loadbench.percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_refuses_bad_input(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        loadbench.percentile(values, q)


@pytest.mark.parametrize(
    ("latencies", "expected"),
    [
        (
            [float(x) for x in range(1, 101)],
            {"count": 100, "mean": 50.5, "min": 1.0, "p50": 50.5, "p90": 90.1, "p99": 99.01, "max": 100.0},
        ),
        ([], {"count": 0, "mean": None, "min": None, "p50": None, "p90": None, "p99": None, "max": None}),
    ],
)
def test_latency_summary(latencies: list[float], expected: dict[str, float | None]) -> None:
    assert loadbench.latency_summary(latencies) == expected


@pytest.mark.parametrize(("baseline", "last", "expected"), [(100.0, 110.0, 10.0), (200.0, 190.0, -5.0)])
def test_drift_percent(baseline: float, last: float, expected: float) -> None:
    assert loadbench.drift_percent(baseline, last) == expected


@pytest.mark.parametrize("words", [400, 100])
def test_build_note_cuts_a_bundled_sample_at_a_line(words: int) -> None:
    note = loadbench.build_note(words)
    samples = ROOT / "corpora" / "samples"
    source = next(
        p.read_text(encoding="utf-8")
        for p in sorted(samples.glob("*.txt"))
        if len(p.read_text(encoding="utf-8").split()) >= words
    )
    assert source.startswith(note.rstrip("\n"))
    assert words <= len(note.split()) < words + 150


def test_build_note_refuses_a_length_no_sample_has() -> None:
    with pytest.raises(loadbench.BenchmarkError):
        loadbench.build_note(1_000_000)


def test_run_load_counts_every_request(serve_in_thread: Any) -> None:
    base_url = serve_in_thread(8)
    result = loadbench.run_load(base_url, NOTE, clients=4, requests=40, max_seconds=30)
    assert result["requests_sent"] == 40
    assert result["ok"] == 40
    assert result["errors"] == 0
    assert result["status_counts"] == {"200": 40}
    assert result["latency_ms"]["count"] == 40
    assert result["latency_ms"]["min"] >= FAKE_DELAY_SECONDS * 1000
    assert result["latency_ms"]["p50"] <= result["latency_ms"]["p99"] <= result["latency_ms"]["max"]
    # both figures are rounded: seconds to 0.01, which for a third of a second is 1.5 %
    rounding = 0.01 + 0.006 / result["seconds"]
    assert result["requests_per_second"] == pytest.approx(40 / result["seconds"], rel=rounding)


def test_run_load_sees_shedding_with_retry_after(serve_in_thread: Any) -> None:
    base_url = serve_in_thread(1)
    result = loadbench.run_load(base_url, NOTE, clients=8, requests=80, max_seconds=30)
    assert result["requests_sent"] == 80
    assert result["status_counts"]["503"] > 0
    assert result["ok"] + result["status_counts"]["503"] == 80
    assert result["errors"] == result["status_counts"]["503"]
    assert result["missing_retry_after"] == 0
    assert loadbench.is_live(base_url)


def test_run_load_stops_at_max_seconds(serve_in_thread: Any) -> None:
    base_url = serve_in_thread(8)
    started = time.monotonic()
    result = loadbench.run_load(base_url, NOTE, clients=2, requests=1_000_000, max_seconds=0.5)
    assert time.monotonic() - started < 5
    assert 0 < result["requests_sent"] < 1_000_000


def test_sequential_latencies_skip_the_warmup(serve_in_thread: Any) -> None:
    latencies = loadbench.sequential_latencies(serve_in_thread(8), NOTE, runs=5, warmup=2)
    assert len(latencies) == 5
    assert min(latencies) >= FAKE_DELAY_SECONDS * 1000


def test_report_targets_and_table(serve_in_thread: Any) -> None:
    base_url = serve_in_thread(1)
    run = loadbench.run_load(base_url, NOTE, clients=1, requests=10, max_seconds=30)
    shedding = loadbench.run_load(base_url, NOTE, clients=8, requests=40, max_seconds=30)
    shedding["live_after"] = loadbench.is_live(base_url)
    report: dict[str, Any] = {
        "machine": loadbench.machine_info(),
        "note": {"words": len(NOTE.split()), "chars": len(NOTE)},
        "library_vs_service": {
            "library_ms": loadbench.latency_summary([20.0, 21.0]),
            "service_one_client_ms": loadbench.latency_summary([25.0, 26.0]),
            "difference_p50_ms": 5.0,
        },
        "throughput": {"workers_1": run, "workers_2": run, "ratio_2_to_1": 1.0},
        "shedding": shedding,
        "soak": {"workers": {"101": {"drift_percent": 3.0}, "102": {"drift_percent": 12.5}}},
    }
    targets = loadbench.targets_met(report)
    assert {name: t["met"] for name, t in targets.items()} == {
        "library_vs_service_p50_within_10ms": True,
        "scaling_ratio_at_least_1.7": False,
        "p99_at_most_500ms_2_workers": True,
        "zero_errors_8_clients": True,
        "shedding_every_503_has_retry_after_and_server_live": True,
        "soak_rss_drift_within_10_percent": False,
    }
    report["targets"] = targets
    report["soak"] = None
    table = loadbench.format_table(report)
    assert "scaling 2/1 workers: 1.0" in table
    assert "target scaling_ratio_at_least_1.7: NOT met" in table


def test_service_process_starts_workers_samples_memory_and_stops(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT), "NOTES2FHIR_MAX_IN_FLIGHT": "8"}  # two pipeline processes
    with loadbench.ServiceProcess(
        2, env, app_factory=FAKE_APP_FACTORY, ready_timeout=60, log_dir=tmp_path
    ) as service:
        parent = service.pid
        workers = service.worker_pids()
        assert len(workers) == 2
        assert parent not in workers
        assert all(loadbench.rss_bytes(pid) > 10 * 2**20 for pid in workers)
        soaked = loadbench.soak(service, NOTE, clients=2, seconds=1.5, sample_every=0.5, warmup_seconds=0.5)
        assert soaked["load"]["errors"] == 0
        assert soaked["load"]["ok"] > 0
        assert sorted(int(pid) for pid in soaked["workers"]) == workers
        for worker in soaked["workers"].values():
            assert worker["samples"] >= 3
            assert worker["min_mb"] <= worker["baseline_mb"] <= worker["max_mb"]
            assert worker["drift_percent"] == loadbench.drift_percent(
                worker["baseline_mb"], worker["last_mb"]
            )
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in [parent, *workers]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in [parent, *workers])


def test_service_process_reports_a_server_that_exits(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT)}
    bad_factory = "no_such_module_for_loadbench:create_app"
    with (
        pytest.raises(loadbench.BenchmarkError, match="exited"),
        loadbench.ServiceProcess(1, env, app_factory=bad_factory, ready_timeout=60, log_dir=tmp_path),
    ):
        pass
    (log_file,) = tmp_path.glob("loadbench-uvicorn-*.log")
    assert "no_such_module_for_loadbench" in log_file.read_text(encoding="utf-8")


def test_free_port_is_bindable() -> None:
    port = loadbench.free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((loadbench.HOST, port))


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("INFO:     Started server process [1]\nINFO:     Application startup complete.\n", {}),
        (
            "INFO:     Application startup complete.\n"
            "request 0a1b: unhandled ValueError at spacy/matcher/matcher.pyx:164\n"
            "request ff02: unhandled ValueError at spacy/matcher/matcher.pyx:164\n"
            "WARNING:  Invalid HTTP request received.\n",
            {
                "request: unhandled ValueError at spacy/matcher/matcher.pyx:164": 2,
                "WARNING:  Invalid HTTP request received.": 1,
            },
        ),
    ],
)
def test_server_problems_are_counted_without_request_ids(
    tmp_path: Path, output: str, expected: dict[str, int]
) -> None:
    service = loadbench.ServiceProcess(1, {}, log_dir=tmp_path)
    service.log_path.write_text(output, encoding="utf-8")
    assert service.problems() == expected
