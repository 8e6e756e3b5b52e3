"""Pipeline processes behind one queue: answers, input errors, a hanging note, a note that kills its process,
fair sharing between threads, and the service's answers when a process dies or a note runs too long."""

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp.errors import InputError
from nlp.pipeline import PipelineInfo, validate_text
from nlp.records import NoteRecord, text_hash
from service.app import create_app, serve_pipeline
from service.config import Settings
from service.errors import DeadlineExceeded, NotReady, WorkerCrashed
from service.pool import PipelineProcesses

NOTE = "Denies chest pain. Lisinopril 10 mg daily."


class PoisonPipeline:
    """A record per note with the process id as ``patient_id``; ``HANG`` sleeps for a minute, ``EXIT``
    ends the process (as a segfault in native code would) and ``BUG`` raises a plain error."""

    id = "notes2fhir-poison@0.0.0"
    info = PipelineInfo(
        name="poison", version="0.0.0", fingerprint="fedcba987654", components=(), labels=(), max_chars=500
    )

    def annotate(
        self,
        text: str,
        *,
        note_id: str | None = None,
        patient_id: str | None = None,
        targets: Sequence[tuple[int, int, str]] | None = None,
    ) -> NoteRecord:
        validate_text(text, 500)
        if "HANG" in text:
            time.sleep(60)
        if "EXIT" in text:
            os._exit(3)
        if "BUG" in text:
            raise ValueError("a bug in a component")
        if "SLOW" in text:
            time.sleep(0.2)
        return NoteRecord(
            note_id=note_id or "note",
            patient_id=str(os.getpid()),
            text_sha256=text_hash(text),
            text_length=len(text),
            pipeline=self.id,
            mentions=(),
        )


class BrokenPipeline:
    """A loader that fails, as a missing model would."""

    def __init__(self) -> None:
        raise FileNotFoundError("models/missing: no such model")


@pytest.fixture(scope="module")
def pool() -> Iterator[PipelineProcesses]:
    processes = PipelineProcesses(PoisonPipeline, 2, timeout=2.0, start_timeout=60)
    yield processes
    processes.close()


def _ask(pool: PipelineProcesses, results: list[str | None]) -> None:
    with contextlib.suppress(DeadlineExceeded):  # every process busy or loading
        results.append(pool.annotate("SLOW " + NOTE).patient_id)


def _wait_until_live(pool: PipelineProcesses, idle: int, seconds: float = 30) -> None:
    """Block until ``idle`` different processes answer (a replacement takes a moment to start)."""
    deadline = time.monotonic() + seconds
    seen: set[str | None] = set()
    while len(seen) < idle and time.monotonic() < deadline:
        results: list[str | None] = []
        threads = [threading.Thread(target=_ask, args=(pool, results)) for _ in range(idle)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seen = set(results)
    assert len(seen) >= idle, "the replacement process did not come up"


def test_answers_like_the_pipeline_with_the_processes_identity(pool: PipelineProcesses) -> None:
    record = pool.annotate(NOTE, note_id="n1", targets=[(7, 17, "PROBLEM")])
    assert record.note_id == "n1"
    assert record.pipeline == PoisonPipeline.id
    assert record.patient_id != str(os.getpid())  # it ran in another process
    assert pool.id == PoisonPipeline.id
    assert pool.info.fingerprint == "fedcba987654"
    assert pool.live == 2


@pytest.mark.parametrize(
    ("text", "code"), [("", "empty_text"), ("a\x00b", "nul_byte"), ("x" * 501, "text_too_long")]
)
def test_input_errors_come_back_with_their_code(pool: PipelineProcesses, text: str, code: str) -> None:
    restarts = pool.restarts
    with pytest.raises(InputError) as caught:
        pool.annotate(text)
    assert caught.value.code == code
    assert pool.restarts == restarts  # a refused note costs no process


def test_a_failing_component_is_an_error_of_that_note_only(pool: PipelineProcesses) -> None:
    with pytest.raises(RuntimeError, match="ValueError"):
        pool.annotate("BUG " + NOTE)
    assert pool.annotate(NOTE).note_id == "note"


def test_a_hanging_note_is_stopped_at_the_deadline_and_its_process_replaced(pool: PipelineProcesses) -> None:
    restarts = pool.restarts
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        pool.annotate("HANG " + NOTE)
    assert time.monotonic() - started < 5
    assert pool.restarts == restarts + 1
    assert pool.annotate(NOTE).note_id == "note"  # the other process answers meanwhile
    _wait_until_live(pool, 2)


def test_a_note_that_kills_its_process_fails_alone(pool: PipelineProcesses) -> None:
    restarts = pool.restarts
    with pytest.raises(WorkerCrashed, match="exit code 3"):
        pool.annotate("EXIT " + NOTE)
    assert pool.restarts == restarts + 1
    assert pool.annotate(NOTE).note_id == "note"
    _wait_until_live(pool, 2)
    assert pool.live == 2


def test_a_process_killed_while_idle_costs_no_note(pool: PipelineProcesses) -> None:
    """An OOM kill between two notes: the note that finds the dead process goes to the next one."""
    _wait_until_live(pool, 2)
    restarts = pool.restarts
    victim = pool.annotate(NOTE).patient_id  # that process goes to the back of the queue
    assert victim is not None
    os.kill(int(victim), signal.SIGKILL)
    time.sleep(0.5)
    answered = {pool.annotate(NOTE).patient_id for _ in range(2)}  # the second one meets the dead process
    assert victim not in answered
    assert pool.restarts == restarts + 1
    _wait_until_live(pool, 2)


def test_threads_share_the_processes_first_come_first_served(pool: PipelineProcesses) -> None:
    """Eight threads, two processes: each process takes about half the notes and none waits behind
    a busy process while the other idles."""
    pids: list[str | None] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(4):
            pid = pool.annotate("SLOW " + NOTE).patient_id
            with lock:
                pids.append(pid)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert len(pids) == 32
    assert sorted(pids.count(pid) for pid in set(pids)) == [16, 16]
    assert elapsed < 32 * 0.2 / 2 + 2.0  # both processes busy all along


def test_a_pipeline_that_cannot_load_is_reported_at_start() -> None:
    with pytest.raises(NotReady, match="FileNotFoundError: models/missing"):
        PipelineProcesses(BrokenPipeline, 1, timeout=1.0, start_timeout=60)


def test_close_stops_every_process() -> None:
    processes = PipelineProcesses(PoisonPipeline, 2, timeout=1.0, start_timeout=60)
    pids = {processes.annotate("SLOW " + NOTE).patient_id for _ in range(4)}
    processes.close()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert processes.live == 0


def test_the_service_answers_crashes_and_deadlines_per_note() -> None:
    settings = Settings(workers=1, deadline_seconds=2.0)
    app = create_app(settings, pipeline_factory=lambda s: serve_pipeline(PoisonPipeline, s))
    with TestClient(app) as client:
        crashed = client.post("/v1/annotate", json={"id": "n1", "text": "EXIT " + NOTE})
        assert crashed.status_code == 500
        assert crashed.json()["error"]["code"] == "worker_crashed"
        assert "EXIT" not in crashed.text

        info = client.get("/v1/info").json()
        assert info["limits"]["workers"] == 1

        deadline = time.monotonic() + 30
        while (ok := client.post("/v1/annotate", json={"text": NOTE})).status_code != 200:
            assert ok.json()["error"]["code"] == "deadline_exceeded"  # the replacement is still loading
            assert time.monotonic() < deadline
        batch = client.post(
            "/v1/annotate/batch",
            json={"notes": [{"id": "a", "text": NOTE}, {"id": "b", "text": ""}, {"id": "c", "text": "EXIT"}]},
        ).json()["results"]
        assert "record" in batch[0]
        assert batch[1]["error"]["code"] == "empty_text"
        assert batch[2]["error"]["code"] == "worker_crashed"

        while client.post("/v1/annotate", json={"text": NOTE}).status_code != 200:
            assert time.monotonic() < deadline + 30
        hung = client.post("/v1/annotate", json={"text": "HANG " + NOTE})
        assert hung.status_code == 503
        assert hung.json()["error"]["code"] == "deadline_exceeded"
        metrics = client.get("/metrics").text
        assert "notes2fhir_pipeline_process_restarts 3.0" in metrics
        assert 'notes2fhir_note_errors_total{code="worker_crashed"} 2.0' in metrics
