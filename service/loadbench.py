"""Load benchmark of the HTTP service: library vs service latency, worker scaling, shedding, memory soak.

Run ``python -m service.loadbench [--requests 2000] [--soak-seconds 600] [--pipeline default] [--skip-soak]
[--output out/loadbench.json]``. It starts the service itself (``uvicorn --factory service.app:create_app``)
on free loopback ports, drives it with threads of ``httpx.Client`` and always stops every server process it
started. The report is JSON on stdout (and in ``--output``); a short table goes to stderr.

Worker memory is read from ``/proc/<pid>/status`` (``VmRSS``), so the memory soak needs Linux.
"""

import argparse
import contextlib
import gc
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

import httpx

from nlp.errors import Notes2FhirError
from nlp.machine import machine_info
from service.config import Settings

log = logging.getLogger(__name__)

ANNOTATE_PATH = "/v1/annotate?format=record"
READY_PATH = "/health/ready"
LIVE_PATH = "/health/live"
DEFAULT_APP_FACTORY = "service.app:create_app"
# uvicorn logs this when its lifespan (the pipeline processes' load) has finished
STARTUP_COMPLETE = "Application startup complete"
NOTE_WORDS = 400
HOST = "127.0.0.1"
REQUEST_ID = re.compile(r"request [0-9a-f]+: ")


class BenchmarkError(Notes2FhirError):
    """The benchmark could not run (a server that never became ready or died)."""

    code = "benchmark_failed"


# ---------------------------------------------------------------------------------------------- numbers
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation between closest ranks (numpy's default).

    Args:
        values: the sample (any order, at least one value).
        q: the percentile, 0..100.

    Raises:
        ValueError: an empty sample or ``q`` outside 0..100.
    """
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | int | None]:
    """Count, mean, min, p50, p90, p99 and max of latencies in ms (``None`` values for an empty sample)."""
    if not latencies_ms:
        return {"count": 0, "mean": None, "min": None, "p50": None, "p90": None, "p99": None, "max": None}
    return {
        "count": len(latencies_ms),
        "mean": round(sum(latencies_ms) / len(latencies_ms), 2),
        "min": round(min(latencies_ms), 2),
        "p50": round(percentile(latencies_ms, 50), 2),
        "p90": round(percentile(latencies_ms, 90), 2),
        "p99": round(percentile(latencies_ms, 99), 2),
        "max": round(max(latencies_ms), 2),
    }


def drift_percent(baseline: float, last: float) -> float:
    """How far ``last`` moved from ``baseline``, in percent of ``baseline``."""
    return round((last - baseline) / baseline * 100, 2)


# ---------------------------------------------------------------------------------------------- inputs
def build_note(words: int = NOTE_WORDS) -> str:
    """A synthetic note of about ``words`` words: whole lines of the first bundled sample that long enough.

    Raises:
        BenchmarkError: no bundled sample has ``words`` words.
    """
    samples = resources.files("corpora") / "samples"
    for sample in sorted((p for p in samples.iterdir() if p.name.endswith(".txt")), key=lambda p: p.name):
        text = sample.read_text(encoding="utf-8")
        if len(text.split()) < words:
            continue
        lines: list[str] = []
        count = 0
        for line in text.splitlines():
            lines.append(line)
            count += len(line.split())
            if count >= words:
                break
        return "\n".join(lines).strip() + "\n"
    raise BenchmarkError(f"no bundled sample has {words} words")


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------------- processes
def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from ``/proc/<pid>/status``.

    Raises:
        BenchmarkError: the process has no readable ``VmRSS`` (gone, or not Linux).
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchmarkError(f"cannot read the memory of process {pid}: {exc}") from exc
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchmarkError(f"process {pid} reports no VmRSS")


def child_pids(parent: int) -> list[int]:
    """Pids of the live direct children of ``parent`` (scans ``/proc/*/stat``)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8")
        except OSError:
            continue
        # "pid (comm) state ppid ..."; comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            children.append(int(entry.name))
    return sorted(children)


def command_line(pid: int) -> str:
    """A process's command line (empty when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class ServiceProcess:
    """A uvicorn server in its own process group, started on a free port and stopped on exit.

    Args:
        workers: pipeline processes (``NOTES2FHIR_WORKERS``) behind the one uvicorn process.
        env: extra environment (``NOTES2FHIR_*`` settings) for the server.
        app_factory: ``module:function`` building the app (tests pass a fake-pipeline factory).
        ready_timeout: seconds to wait until every worker has loaded the pipeline.
        log_dir: where the server's output file goes (default: the system temp directory).
    """

    def __init__(
        self,
        workers: int,
        env: Mapping[str, str],
        *,
        app_factory: str = DEFAULT_APP_FACTORY,
        ready_timeout: float = 180.0,
        log_dir: Path | None = None,
    ) -> None:
        self.workers = workers
        self.env = {**env, "NOTES2FHIR_WORKERS": str(workers)}
        self.app_factory = app_factory
        self.ready_timeout = ready_timeout
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.ready_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        handle, log_path = tempfile.mkstemp(prefix="loadbench-uvicorn-", suffix=".log", dir=log_dir)
        os.close(handle)
        self.log_path = Path(log_path)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The uvicorn parent process."""
        if self._process is None:
            raise BenchmarkError("the server is not running")
        return self._process.pid

    def start(self) -> None:
        """Start uvicorn and wait until ``/health/ready`` answers and every worker finished its start-up.

        Raises:
            BenchmarkError: the server exited or was not ready within ``ready_timeout``.
        """
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            self.app_factory,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "info",
        ]
        started = time.perf_counter()
        with self.log_path.open("wb") as output:
            self._process = subprocess.Popen(
                command,
                env={**os.environ, **self.env},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("started %d-worker server pid %d on port %d", self.workers, self._process.pid, self.port)
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise BenchmarkError(
                        f"the server exited with {self._process.returncode}: {self.log_tail()}"
                    )
                if self._startups_logged() >= 1 and self._answers_ready(client):
                    self.ready_seconds = round(time.perf_counter() - started, 1)
                    log.info("server on port %d ready in %.1fs", self.port, self.ready_seconds)
                    return
                time.sleep(0.5)
        raise BenchmarkError(f"the server was not ready within {self.ready_timeout:g}s: {self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The pipeline processes (spawned children of the uvicorn process)."""
        return [pid for pid in child_pids(self.pid) if "spawn_main" in command_line(pid)]

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after 30 s (the server's output stays in ``log_path``)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
        if process is not None:
            # workers left behind by a parent that died first
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's output."""
        return self._server_output()[-chars:]

    def problems(self) -> dict[str, int]:
        """The server's warning, error and traceback lines (all but uvicorn's ``INFO:`` lines), counted.

        Request ids are cut out so that one failure seen many times is one entry.
        """
        lines = (line for line in self._server_output().splitlines() if line and not line.startswith("INFO:"))
        return dict(Counter(REQUEST_ID.sub("request: ", line) for line in lines).most_common())

    def _startups_logged(self) -> int:
        return self._server_output().count(STARTUP_COMPLETE)

    def _server_output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @staticmethod
    def _answers_ready(client: httpx.Client) -> bool:
        try:
            return client.get(READY_PATH).status_code == 200
        except httpx.TransportError:
            return False


# ---------------------------------------------------------------------------------------------- load
@dataclass
class ClientTally:
    """What one client thread saw."""

    latencies_ms_ok: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    missing_retry_after: int = 0


class RequestBudget:
    """Hands out request numbers to client threads until ``requests`` or ``max_seconds`` is spent."""

    def __init__(self, requests: int, max_seconds: float, stopped: threading.Event | None = None) -> None:
        self.requests = requests
        self.deadline = time.monotonic() + max_seconds
        self.stopped = stopped if stopped is not None else threading.Event()
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """The next request number, or ``None`` when the budget is spent or the run was stopped."""
        if self.stopped.is_set() or time.monotonic() >= self.deadline:
            return None
        with self._lock:
            if self._next >= self.requests:
                return None
            self._next += 1
            return self._next - 1


def _client_loop(base_url: str, note: str, budget: RequestBudget, tally: ClientTally, timeout: float) -> None:
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        while (number := budget.take()) is not None:
            started = time.perf_counter()
            try:
                response = client.post(ANNOTATE_PATH, json={"id": f"bench-{number}", "text": note})
            except httpx.HTTPError as exc:
                tally.transport_errors[type(exc).__name__] += 1
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            tally.statuses[response.status_code] += 1
            if response.status_code == 200:
                tally.latencies_ms_ok.append(elapsed_ms)
            elif response.status_code == 503 and "retry-after" not in response.headers:
                tally.missing_retry_after += 1


def run_load(
    base_url: str,
    note: str,
    *,
    clients: int,
    requests: int,
    max_seconds: float,
    timeout: float = 60.0,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """POST ``note`` from ``clients`` concurrent threads until ``requests`` are sent or time runs out.

    Args:
        base_url: the service, e.g. ``http://127.0.0.1:8000``.
        note: the text of every request.
        clients: concurrent threads, each with its own ``httpx.Client`` (one keep-alive connection).
        requests: total requests over all clients.
        max_seconds: stop sending after this long.
        timeout: per-request timeout in seconds.
        stop: set it to end the run early (each client finishes its current request).

    Returns:
        Counts by status, transport errors, 503s without ``Retry-After``, requests/s of 200 answers and the
        latency summary of the 200 answers.
    """
    budget = RequestBudget(requests, max_seconds, stop)
    tallies = [ClientTally() for _ in range(clients)]
    threads = [
        threading.Thread(target=_client_loop, args=(base_url, note, budget, tally, timeout), daemon=True)
        for tally in tallies
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        budget.stopped.set()
    seconds = time.perf_counter() - started
    statuses: Counter[int] = Counter()
    transport: Counter[str] = Counter()
    latencies: list[float] = []
    for tally in tallies:
        statuses.update(tally.statuses)
        transport.update(tally.transport_errors)
        latencies.extend(tally.latencies_ms_ok)
    ok = statuses[200]
    sent = sum(statuses.values()) + sum(transport.values())
    return {
        "clients": clients,
        "requests_sent": sent,
        "seconds": round(seconds, 2),
        "ok": ok,
        "status_counts": {str(code): n for code, n in sorted(statuses.items())},
        "transport_errors": dict(transport),
        "errors": sent - ok,
        "missing_retry_after": sum(t.missing_retry_after for t in tallies),
        "requests_per_second": round(ok / seconds, 2) if seconds > 0 else 0.0,
        "latency_ms": latency_summary(latencies),
    }


def sequential_latencies(base_url: str, note: str, *, runs: int, warmup: int) -> list[float]:
    """Latencies in ms of ``runs`` one-at-a-time requests after ``warmup`` unmeasured ones.

    Raises:
        BenchmarkError: a request did not answer 200.
    """
    latencies = []
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        for number in range(warmup + runs):
            started = time.perf_counter()
            response = client.post(ANNOTATE_PATH, json={"id": f"seq-{number}", "text": note})
            elapsed_ms = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise BenchmarkError(f"sequential request {number} answered {response.status_code}")
            if number >= warmup:
                latencies.append(elapsed_ms)
    return latencies


def library_latencies(pipeline: str, note: str, *, runs: int, warmup: int) -> tuple[list[float], float]:
    """Latencies in ms of ``nlp.load(pipeline).annotate(note)`` in this process, and the load seconds."""
    import nlp

    started = time.perf_counter()
    pipe = nlp.load(pipeline).warm_up()
    load_seconds = time.perf_counter() - started
    latencies = []
    for number in range(warmup + runs):
        started = time.perf_counter()
        pipe.annotate(note)
        if number >= warmup:
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies, round(load_seconds, 1)


def is_live(base_url: str) -> bool:
    """``GET /health/live`` answers 200."""
    try:
        return httpx.get(base_url + LIVE_PATH, timeout=10.0).status_code == 200
    except httpx.TransportError:
        return False


def soak(
    service: ServiceProcess,
    note: str,
    *,
    clients: int,
    seconds: float,
    sample_every: float = 10.0,
    warmup_seconds: float = 60.0,
) -> dict[str, Any]:
    """Keep ``clients`` busy for ``seconds`` and sample every worker's RSS every ``sample_every`` s.

    The drift of a worker is its last sample against its first sample at or after ``warmup_seconds``.

    Returns:
        The load summary and, per worker pid, its samples and first/last/min/max/baseline MB and drift %.
    """
    load: dict[str, Any] = {}
    stop = threading.Event()

    def drive() -> None:
        load.update(
            run_load(
                service.base_url, note, clients=clients, requests=sys.maxsize, max_seconds=seconds, stop=stop
            )
        )

    driver = threading.Thread(target=drive, daemon=True)
    samples: dict[int, list[tuple[float, float]]] = {}
    started = next_sample = time.monotonic()
    driver.start()
    try:
        while True:
            elapsed = round(time.monotonic() - started, 1)
            for pid in service.worker_pids():
                try:
                    samples.setdefault(pid, []).append((elapsed, round(rss_bytes(pid) / 2**20, 1)))
                except BenchmarkError as exc:
                    log.warning("soak: worker %d gone: %s", pid, exc)
            if not driver.is_alive():
                break
            next_sample += sample_every
            driver.join(timeout=max(0.0, next_sample - time.monotonic()))
    finally:
        stop.set()
        driver.join()
    workers = {}
    for pid, series in samples.items():
        values = [mb for _, mb in series]
        after_warmup = [mb for t, mb in series if t >= warmup_seconds] or values[-1:]
        workers[str(pid)] = {
            "samples": len(series),
            "first_mb": values[0],
            "baseline_mb": after_warmup[0],
            "last_mb": values[-1],
            "min_mb": min(values),
            "max_mb": max(values),
            "drift_percent": drift_percent(after_warmup[0], values[-1]),
            "series_s_mb": series,
        }
    return {
        "seconds": seconds,
        "sample_every_seconds": sample_every,
        "warmup_seconds": warmup_seconds,
        "worker_pids_seen": len(samples),
        "load": load,
        "workers": workers,
    }


# ---------------------------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class BenchConfig:
    """Sizes of one benchmark run (the CLI's options)."""

    pipeline: str = "default"
    requests: int = 2000
    soak_seconds: float = 600.0
    skip_soak: bool = False
    clients: int = 8
    shed_clients: int = 64
    library_runs: int = 50
    service_runs: int = 200
    warmup: int = 10
    max_seconds_per_run: float = 1200.0
    ready_timeout: float = 180.0
    app_factory: str = DEFAULT_APP_FACTORY


def _server_env(config: BenchConfig, max_in_flight: int | None) -> dict[str, str]:
    env = {"NOTES2FHIR_PIPELINE": config.pipeline}
    if max_in_flight is not None:
        env["NOTES2FHIR_MAX_IN_FLIGHT"] = str(max_in_flight)
    return env


def server_log(service: ServiceProcess) -> dict[str, Any]:
    """How long a server took to be ready, where its output is kept and the problems it logged."""
    return {
        "ready_seconds": service.ready_seconds,
        "server_log": str(service.log_path),
        "server_problems": service.problems(),
    }


def _concurrent_warmup(base_url: str, note: str, clients: int) -> None:
    run_load(base_url, note, clients=clients, requests=clients * 3, max_seconds=120.0)


def _throughput(service: ServiceProcess, note: str, config: BenchConfig, label: str) -> dict[str, Any]:
    """Warm up, then ``config.requests`` requests from ``config.clients`` clients, with the server's
    own log counts."""
    _concurrent_warmup(service.base_url, note, config.clients)
    log.info("%s: %d requests from %d clients", label, config.requests, config.clients)
    result = run_load(
        service.base_url,
        note,
        clients=config.clients,
        requests=config.requests,
        max_seconds=config.max_seconds_per_run,
    )
    result.update(server_log(service))
    return result


def run_benchmark(config: BenchConfig) -> dict[str, Any]:
    """All four measurements; every server is stopped before this returns or raises.

    Returns:
        The report: machine, settings, ``library_vs_service``, ``throughput``, ``shedding``, ``soak``
        (``None`` when skipped) and ``targets`` (each target's figure and whether it was met).
    """
    note = build_note()
    report: dict[str, Any] = {
        "machine": machine_info(),
        "config": {k: v for k, v in vars(config).items() if k != "app_factory"},
        "note": {"words": len(note.split()), "chars": len(note)},
    }
    run_max_in_flight = config.clients

    log.info("library: loading %s in-process", config.pipeline)
    library_ms, load_seconds = library_latencies(
        config.pipeline, note, runs=config.library_runs, warmup=config.warmup
    )
    gc.collect()

    throughput: dict[str, Any] = {"max_in_flight_per_worker": run_max_in_flight}
    with ServiceProcess(
        1,
        _server_env(config, run_max_in_flight),
        app_factory=config.app_factory,
        ready_timeout=config.ready_timeout,
    ) as one:
        log.info("service, one client: %d sequential requests", config.service_runs)
        service_ms = sequential_latencies(one.base_url, note, runs=config.service_runs, warmup=config.warmup)
        throughput["workers_1"] = _throughput(one, note, config, "1 worker")
    library_p50 = percentile(library_ms, 50)
    service_p50 = percentile(service_ms, 50)
    report["library_vs_service"] = {
        "library_load_seconds": load_seconds,
        "library_ms": latency_summary(library_ms),
        "service_one_client_ms": latency_summary(service_ms),
        "difference_p50_ms": round(service_p50 - library_p50, 2),
    }

    soak_report: dict[str, Any] | None = None
    with ServiceProcess(
        2,
        _server_env(config, run_max_in_flight),
        app_factory=config.app_factory,
        ready_timeout=config.ready_timeout,
    ) as two:
        throughput["workers_2"] = _throughput(two, note, config, "2 workers")
        if not config.skip_soak:
            log.info("soak: 2 workers, %d clients, %gs", config.clients, config.soak_seconds)
            soak_report = soak(
                two,
                note,
                clients=config.clients,
                seconds=config.soak_seconds,
                warmup_seconds=min(60.0, config.soak_seconds / 10),
            )
            soak_report["server_problems"] = two.problems()
    rps_1 = throughput["workers_1"]["requests_per_second"]
    throughput["ratio_2_to_1"] = (
        round(throughput["workers_2"]["requests_per_second"] / rps_1, 2) if rps_1 else None
    )
    report["throughput"] = throughput

    with ServiceProcess(
        2, _server_env(config, None), app_factory=config.app_factory, ready_timeout=config.ready_timeout
    ) as shed:
        _concurrent_warmup(shed.base_url, note, 2)
        log.info("shedding: %d requests from %d clients", config.requests, config.shed_clients)
        shedding = run_load(
            shed.base_url,
            note,
            clients=config.shed_clients,
            requests=config.requests,
            max_seconds=config.max_seconds_per_run,
        )
        shedding["max_in_flight_per_worker"] = Settings.model_fields["max_in_flight"].default
        shedding["live_after"] = is_live(shed.base_url)
        shedding.update(server_log(shed))
    report["shedding"] = shedding
    report["soak"] = soak_report
    report["targets"] = targets_met(report)
    return report


def targets_met(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the issue with its measured figure and whether it was met."""
    one, two = report["throughput"]["workers_1"], report["throughput"]["workers_2"]
    shedding = report["shedding"]
    other_shed_errors = shedding["errors"] - shedding["status_counts"].get("503", 0)
    targets: dict[str, dict[str, Any]] = {
        "library_vs_service_p50_within_10ms": {
            "value": report["library_vs_service"]["difference_p50_ms"],
            "met": report["library_vs_service"]["difference_p50_ms"] <= 10,
        },
        "scaling_ratio_at_least_1.7": {
            "value": report["throughput"]["ratio_2_to_1"],
            "met": (report["throughput"]["ratio_2_to_1"] or 0) >= 1.7,
        },
        "p99_at_most_500ms_2_workers": {
            "value": two["latency_ms"]["p99"],
            "met": two["latency_ms"]["p99"] is not None and two["latency_ms"]["p99"] <= 500,
        },
        "zero_errors_8_clients": {
            "value": one["errors"] + two["errors"],
            "met": one["errors"] + two["errors"] == 0,
        },
        "shedding_every_503_has_retry_after_and_server_live": {
            "value": {
                "missing_retry_after": shedding["missing_retry_after"],
                "other_errors": other_shed_errors,
                "live_after": shedding["live_after"],
            },
            "met": shedding["missing_retry_after"] == 0 and other_shed_errors == 0 and shedding["live_after"],
        },
    }
    if report["soak"] is not None:
        drifts = {pid: w["drift_percent"] for pid, w in report["soak"]["workers"].items()}
        targets["soak_rss_drift_within_10_percent"] = {
            "value": drifts,
            "met": bool(drifts) and all(abs(d) <= 10 for d in drifts.values()),
        }
    return targets


def format_table(report: Mapping[str, Any]) -> str:
    """A short human-readable summary of the report."""
    lvs = report["library_vs_service"]
    tp = report["throughput"]
    shed = report["shedding"]
    lines = [
        f"machine: {report['machine']['machine']}, {report['machine']['cpus_usable']} cores, "
        f"Python {report['machine']['python']}, load avg {report['machine']['load_average_1_5_15']}",
        f"note: {report['note']['words']} words",
        f"library p50 {lvs['library_ms']['p50']} ms | service 1 client p50 "
        f"{lvs['service_one_client_ms']['p50']} ms | difference {lvs['difference_p50_ms']} ms",
        f"{'run':<22}{'req/s':>8}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}",
    ]
    for name, run in (("1 worker, 8 clients", tp["workers_1"]), ("2 workers, 8 clients", tp["workers_2"])):
        lines.append(
            f"{name:<22}{run['requests_per_second']:>8}{run['latency_ms']['p50']!s:>10}"
            f"{run['latency_ms']['p99']!s:>10}{run['errors']:>8}"
        )
    lines.append(f"scaling 2/1 workers: {tp['ratio_2_to_1']}")
    lines.append(
        f"shedding ({shed['clients']} clients): {shed['status_counts']}, missing Retry-After "
        f"{shed['missing_retry_after']}, accepted p99 {shed['latency_ms']['p99']} ms, "
        f"live after {shed['live_after']}"
    )
    if report["soak"] is not None:
        for pid, worker in report["soak"]["workers"].items():
            lines.append(
                f"soak worker {pid}: first {worker['first_mb']} MB, baseline {worker['baseline_mb']} MB, "
                f"last {worker['last_mb']} MB, min {worker['min_mb']}, max {worker['max_mb']}, "
                f"drift {worker['drift_percent']} %"
            )
    lines.extend(
        f"target {name}: {'met' if t['met'] else 'NOT met'} ({t['value']})"
        for name, t in report["targets"].items()
    )
    return "\n".join(lines)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The CLI options."""
    parser = argparse.ArgumentParser(prog="python -m service.loadbench", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per throughput/shedding run")
    parser.add_argument("--soak-seconds", type=float, default=600.0, help="length of the memory soak")
    parser.add_argument("--pipeline", default="default", help="pipeline name for nlp.load()")
    parser.add_argument("--skip-soak", action="store_true", help="leave out the memory soak")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; JSON report on stdout (and ``--output``), a table on stderr."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    config = BenchConfig(
        pipeline=args.pipeline,
        requests=args.requests,
        soak_seconds=args.soak_seconds,
        skip_soak=args.skip_soak,
    )
    report = run_benchmark(config)
    text = json.dumps(report, indent=2)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
    print(format_table(report), file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
