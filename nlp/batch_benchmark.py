"""Batch throughput on MTSamples: our runner with 1 and 2 workers, plain medspaCy, Spark local[2].

Run ``python -m nlp.batch_benchmark [--limit N] [--pipeline default] [--format fhir] [--skip-medspacy]
[--skip-spark] [--output out/batchbench.json]``. Every figure comes from the same run on the same notes:

* **the runner**: MTSamples (read in place, in note-id order, the notes with a transcription) is written
  once to a JSONL file in a temporary folder, then ``notes2fhir annotate NOTES.jsonl -o DIR --workers N
  -q`` runs as a subprocess with 1 and with 2 workers. Wall time includes process start and pipeline
  load; the runner's own annotate seconds come from its ``manifest.json``. Peak memory is polled: the
  RSS of every process of the subprocess tree is read with psutil every :data:`SAMPLE_SECONDS`; the
  figure per worker is the peak of the largest worker process (the runner's parent process, which
  loads no pipeline, is listed apart). CPU seconds are the subprocess tree's
  ``resource.getrusage(RUSAGE_CHILDREN)`` user + system time.
* **plain medspaCy**, in this process, one process: ``medspacy.load()`` with its tokenizer, PyRuSH
  (logging disabled), the TargetMatcher, ConText and the Sectionizer, each with medspaCy's default
  rules; the TargetMatcher's rules are our curated terms (``clinical_terms.json``: every term, synonym
  and abbreviation, matched case-insensitively), since medspaCy ships none. Timed with
  ``nlp.pipe(texts, batch_size=50)``.
* **Spark** ``local[2]`` in this process: ``spark.read.json`` of the same JSONL, :func:`nlp.spark.annotate`,
  written to parquet and counted back; its job time (the Python workers' pipeline loads included, the
  session start apart) is compared with the runner's 2-worker wall time (its workers' loads included).

BLAS and OpenMP are held to one thread in every process the benchmark starts (``OMP_NUM_THREADS=1``
etc.), so that one worker is one core and the per-core figures are per core.
"""

import argparse
import importlib.util
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from nlp.batch import Format
from nlp.errors import Notes2FhirError
from nlp.machine import machine_info
from nlp.pipeline import PIPELINES

log = logging.getLogger(__name__)

CORPUS = "mtsamples"
PROJECTION_NOTES = 10_000_000
SAMPLE_SECONDS = 0.2
COMMAND_CHARS = 120  # of a command line in the report
# in the command line of the runner's worker processes (multiprocessing "spawn") and of PySpark's
# Python workers (forked from its daemon)
RUNNER_WORKER_MARKER = "spawn_main"
SPARK_WORKER_MARKER = "pyspark.daemon"
RUNNER_WORKERS = (1, 2)
MEDSPACY_BATCH_SIZE = 50
SPARK_MASTER = "local[2]"
SPARK_CORES = 2
# one BLAS/OpenMP thread per process: a worker is a core
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
TARGET_SCALING = 1.7
TARGET_MEDSPACY_RATIO = 2.0
TARGET_SPARK_OVERHEAD_PERCENT = 30.0


class BatchBenchmarkError(Notes2FhirError):
    """The benchmark could not run (the runner failed, or its output is not what it promises)."""

    code = "benchmark_failed"


# ---------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class BenchNotes:
    """The notes of one benchmark run, written once to a JSONL file (``{"id", "text"}`` per line)."""

    path: Path
    texts: tuple[str, ...]

    @property
    def words(self) -> int:
        """Whitespace words of all notes."""
        return sum(len(text.split()) for text in self.texts)

    @property
    def chars(self) -> int:
        """Characters of all notes."""
        return sum(len(text) for text in self.texts)


def _note_order(note_id: str) -> tuple[int, int | str]:
    return (0, int(note_id)) if note_id.isdigit() else (1, note_id)


def mtsamples_notes(limit: int | None = None, corpus_dir: Path | None = None) -> list[tuple[str, str]]:
    """MTSamples ``(note_id, text)`` pairs with a transcription, in note-id order, the first ``limit``.

    Args:
        limit: keep only the first ``limit`` notes (all when ``None``).
        corpus_dir: the corpus folder (default: ``corpora.corpus_path("mtsamples")``).

    Raises:
        corpora.CorpusNotFoundError: the corpus folder or its file is missing.
    """
    from corpora import corpus_path, mtsamples

    folder = corpus_dir if corpus_dir is not None else corpus_path(CORPUS)
    rows = [row for split in mtsamples.read(folder).values() for row in split]
    pairs = sorted(
        ((str(row["id"]), str(row["text"])) for row in rows), key=lambda pair: _note_order(pair[0])
    )
    return pairs if limit is None else pairs[:limit]


def write_notes(pairs: Sequence[tuple[str, str]], path: Path) -> BenchNotes:
    """Write ``pairs`` as JSONL (``{"id", "text"}`` per line) to ``path``."""
    with path.open("w", encoding="utf-8") as out:
        for note_id, text in pairs:
            out.write(json.dumps({"id": note_id, "text": text}, ensure_ascii=False) + "\n")
    return BenchNotes(path, tuple(text for _, text in pairs))


# ---------------------------------------------------------------------------------------------- memory
@dataclass
class ProcessPeak:
    """The highest RSS seen of one process, and its command line."""

    pid: int
    command: str
    peak_bytes: int = 0


class TreeMemory:
    """Polls the RSS of a process's descendants (and the process itself, unless told not to) in a thread.

    Args:
        root: the process whose tree is watched.
        include_root: also watch ``root`` itself (not when ``root`` is this benchmark process).
        every: seconds between samples.
    """

    def __init__(self, root: int, *, include_root: bool = True, every: float = SAMPLE_SECONDS) -> None:
        self.root = root
        self.include_root = include_root
        self.every = every
        self.peaks: dict[int, ProcessPeak] = {}
        self.peak_total_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="tree-memory", daemon=True)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        """Read the RSS of every live process of the tree once."""
        try:
            root = psutil.Process(self.root)
            processes = root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        if self.include_root:
            processes.insert(0, root)
        total = 0
        for process in processes:
            try:
                rss = process.memory_info().rss
                peak = self.peaks.get(process.pid)
                if peak is None:
                    peak = self.peaks[process.pid] = ProcessPeak(process.pid, _command(process))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            peak.peak_bytes = max(peak.peak_bytes, rss)
            total += rss
        self.peak_total_bytes = max(self.peak_total_bytes, total)

    def summary(self, worker_marker: str | None = None) -> dict[str, Any]:
        """Peak RSS in MB: of the largest worker, of the largest process, of the whole tree at one moment
        and of each process.

        Args:
            worker_marker: text in the command line of a worker process; the per-worker peak is ``None``
                without it or when no command line holds it.
        """
        ranked = sorted(self.peaks.values(), key=lambda p: p.peak_bytes, reverse=True)
        workers = [p for p in ranked if worker_marker is not None and worker_marker in p.command]
        return {
            "peak_rss_mb_per_worker": _mb(workers[0].peak_bytes) if workers else None,
            "peak_rss_mb_largest_process": _mb(ranked[0].peak_bytes) if ranked else None,
            "peak_rss_mb_tree": _mb(self.peak_total_bytes) if ranked else None,
            "processes": [
                {"pid": p.pid, "command": p.command[:COMMAND_CHARS], "peak_rss_mb": _mb(p.peak_bytes)}
                for p in ranked
            ],
        }

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)


def _mb(size: int) -> float:
    return round(size / 2**20, 1)


def _command(process: psutil.Process) -> str:
    """The command line, its program without the folder (the process name when it has none)."""
    parts = process.cmdline()
    return " ".join([Path(parts[0]).name, *parts[1:]]) if parts else process.name()


# ---------------------------------------------------------------------------------------------- runner
def runner_executable() -> Path:
    """The ``notes2fhir`` console script beside this Python (the venv's), else the one on ``PATH``.

    Raises:
        BatchBenchmarkError: neither exists.
    """
    beside = Path(sys.executable).with_name("notes2fhir")
    if beside.is_file():
        return beside
    found = shutil.which("notes2fhir")
    if found is None:
        raise BatchBenchmarkError("the notes2fhir command is not installed (pip install -e .)")
    return Path(found)


def runner_command(notes: Path, out_dir: Path, *, pipeline: str, fmt: Format, workers: int) -> list[str]:
    """``notes2fhir annotate`` over ``notes`` into ``out_dir``, quiet."""
    return [
        str(runner_executable()),
        "annotate",
        str(notes),
        "-o",
        str(out_dir),
        "--format",
        fmt,
        "--pipeline",
        pipeline,
        "--workers",
        str(workers),
        "-q",
    ]


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_runner(
    notes: BenchNotes, out_dir: Path, *, pipeline: str, fmt: Format, workers: int
) -> dict[str, Any]:
    """Run the batch runner as a subprocess over ``notes`` and measure it.

    Returns:
        :func:`runner_figures`, CPU seconds and cores kept busy (wall-time average), and the polled
        peak memory (:meth:`TreeMemory.summary`).

    Raises:
        BatchBenchmarkError: the runner exited non-zero, wrote no manifest, or annotated fewer notes.
    """
    command = runner_command(notes.path, out_dir, pipeline=pipeline, fmt=fmt, workers=workers)
    log_path = out_dir.with_name(out_dir.name + ".log")
    log.info("runner, %d worker(s): %s", workers, " ".join(command))
    cpu_before = _children_cpu_seconds()
    started = time.perf_counter()
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **SINGLE_THREAD_ENV}
        )
        with TreeMemory(process.pid) as memory:
            returncode = process.wait()
    wall = time.perf_counter() - started
    cpu = _children_cpu_seconds() - cpu_before
    runner_output = log_path.read_text(encoding="utf-8", errors="replace")
    if returncode != 0:
        raise BatchBenchmarkError(f"the runner exited with {returncode}: {runner_output[-2000:]}")
    manifest_path = out_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BatchBenchmarkError(f"the runner wrote no readable {manifest_path}: {exc}") from exc
    result = runner_figures(manifest, wall_seconds=wall, notes=len(notes.texts))
    result.update(
        workers=workers,
        cpu_seconds=round(cpu, 1),
        cpu_cores_busy=round(cpu / wall, 2) if wall > 0 else None,
        **memory.summary(RUNNER_WORKER_MARKER),
    )
    return result


MANIFEST_FIELDS = ("status", "input", "failed", "words", "seconds", "load_seconds", "worker_restarts")


def runner_figures(manifest: Mapping[str, Any], *, wall_seconds: float, notes: int) -> dict[str, Any]:
    """Throughput of one runner run from its ``manifest.json`` and the measured wall time.

    Notes/s and words/s use the manifest's ``seconds`` (annotation after every worker loaded the
    pipeline); ``notes_per_second_wall`` uses the subprocess's wall time (start-up and load included).

    Args:
        manifest: the runner's manifest (:class:`nlp.batch.Manifest` as JSON).
        wall_seconds: the subprocess's wall time.
        notes: how many notes the runner was given.

    Raises:
        BatchBenchmarkError: the manifest lacks a field, counts other than ``notes`` notes, or reports
            no annotation time.
    """
    if missing := [name for name in MANIFEST_FIELDS if name not in manifest]:
        raise BatchBenchmarkError(f"the runner's manifest has no {missing}")
    if manifest["input"] != notes:
        raise BatchBenchmarkError(f"the runner's manifest counts {manifest['input']} of {notes} notes")
    seconds = manifest["seconds"]
    if not seconds > 0:
        raise BatchBenchmarkError(f"the runner's manifest reports {seconds} s of annotation")
    return {
        "status": manifest["status"],
        "notes": notes,
        "errors": manifest["failed"],
        "worker_restarts": manifest["worker_restarts"],
        "words": manifest["words"],
        "wall_seconds": round(wall_seconds, 2),
        "load_seconds": manifest["load_seconds"],
        "annotate_seconds": seconds,
        "notes_per_second": round(notes / seconds, 2),
        "words_per_second": round(manifest["words"] / seconds),
        "notes_per_second_wall": round(notes / wall_seconds, 2),
    }


def projected_core_hours(notes_per_second_per_core: float, notes: int = PROJECTION_NOTES) -> float:
    """Core-hours to annotate ``notes`` at ``notes_per_second_per_core``.

    Raises:
        ValueError: a throughput that is not positive.
    """
    if notes_per_second_per_core <= 0:
        raise ValueError(f"throughput must be positive, not {notes_per_second_per_core}")
    return round(notes / notes_per_second_per_core / 3600, 1)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` to two decimals, ``None`` when either is missing or the divisor is 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


# ---------------------------------------------------------------------------------------------- medspaCy
def medspacy_target_rules() -> list[Any]:
    """Our curated terms as medspaCy ``TargetRule``s: each term, synonym and abbreviation, any case."""
    from medspacy.target_matcher import TargetRule

    from nlp import resources

    rules = []
    seen: set[tuple[str, str]] = set()
    for term in resources.load("clinical_terms").terms:
        for phrase in (term.text, *term.synonyms, *term.abbreviations):
            key = (phrase.lower(), term.label)
            if key not in seen:
                seen.add(key)
                rules.append(TargetRule(phrase, term.label))
    return rules


def build_medspacy_baseline() -> Any:
    """Plain medspaCy: its tokenizer, PyRuSH, TargetMatcher (:func:`medspacy_target_rules`), ConText and
    Sectionizer with their default rules; PyRuSH's loguru logging is disabled."""
    import medspacy
    from loguru import logger

    logger.disable("PyRuSH")  # otherwise ~330 DEBUG lines per note
    nlp = medspacy.load(
        medspacy_enable=[
            "medspacy_tokenizer",
            "medspacy_pyrush",
            "medspacy_target_matcher",
            "medspacy_context",
            "medspacy_sectionizer",
        ]
    )
    nlp.get_pipe("medspacy_target_matcher").add(medspacy_target_rules())
    return nlp


def run_medspacy(texts: Sequence[str]) -> dict[str, Any]:
    """Time :func:`build_medspacy_baseline` and ``nlp.pipe`` over ``texts`` in this process, one process."""
    log.info("plain medspaCy: %d notes, one process", len(texts))
    started = time.perf_counter()
    nlp = build_medspacy_baseline()
    load_seconds = time.perf_counter() - started
    words = sum(len(text.split()) for text in texts)
    mentions = negated = sections = 0
    started = time.perf_counter()
    for doc in nlp.pipe(texts, batch_size=MEDSPACY_BATCH_SIZE):
        mentions += len(doc.ents)
        negated += sum(bool(ent._.is_negated) for ent in doc.ents)
        sections += len(doc._.sections)
    seconds = time.perf_counter() - started
    return {
        "components": list(nlp.pipe_names),
        "rules": {
            "target_matcher": len(nlp.get_pipe("medspacy_target_matcher").rules),
            "context": len(nlp.get_pipe("medspacy_context").rules),
            "sectionizer": len(nlp.get_pipe("medspacy_sectionizer").rules),
        },
        "notes": len(texts),
        "words": words,
        "load_seconds": round(load_seconds, 2),
        "seconds": round(seconds, 2),
        "notes_per_second": round(len(texts) / seconds, 2),
        "words_per_second": round(words / seconds),
        "mentions": mentions,
        "negated_mentions": negated,
        "sections": sections,
    }


# ---------------------------------------------------------------------------------------------- Spark
def run_spark(notes: BenchNotes, work_dir: Path, *, pipeline: str, fmt: Format) -> dict[str, Any]:
    """``spark.read.json`` → :func:`nlp.spark.annotate` → parquet → count, on ``local[2]`` in this process.

    Returns:
        Session start seconds, job seconds (read, annotate, write, count back; the executors' pipeline
        loads included), rows and ok rows written, notes/s of the job, and the peak memory of the JVM and
        its Python workers.

    Raises:
        BatchBenchmarkError: fewer rows came back than notes went in.
    """
    from pyspark.sql import SparkSession

    from nlp import spark as nlp_spark

    os.environ.update(SINGLE_THREAD_ENV)  # the JVM and its Python workers inherit it
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need this venv, where nlp is installed
    parquet = work_dir / "spark-out.parquet"
    started = time.perf_counter()
    session = (
        SparkSession.builder.master(SPARK_MASTER)
        .appName("notes2fhir-batch-benchmark")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(work_dir / "spark-local"))
        .config("spark.sql.warehouse.dir", str(work_dir / "spark-warehouse"))
        .config("spark.sql.shuffle.partitions", str(SPARK_CORES))
        .getOrCreate()
    )
    session_seconds = time.perf_counter() - started
    session.sparkContext.setLogLevel("WARN")
    try:
        with TreeMemory(os.getpid(), include_root=False) as memory:
            started = time.perf_counter()
            frame = session.read.json(str(notes.path)).repartition(SPARK_CORES)
            annotated = nlp_spark.annotate(frame, text_col="text", id_col="id", pipeline=pipeline, fmt=fmt)
            annotated.write.mode("overwrite").parquet(str(parquet))
            written = session.read.parquet(str(parquet))
            rows = written.count()
            ok_rows = written.filter(written.ok).count()
            job_seconds = time.perf_counter() - started
    finally:
        session.stop()
    if rows < len(notes.texts):
        raise BatchBenchmarkError(f"Spark wrote {rows} rows for {len(notes.texts)} notes")
    return {
        "master": SPARK_MASTER,
        "partitions": SPARK_CORES,
        "session_start_seconds": round(session_seconds, 2),
        "job_seconds": round(job_seconds, 2),
        "rows": rows,
        "ok_rows": ok_rows,
        "notes_per_second": round(len(notes.texts) / job_seconds, 2),
        **memory.summary(SPARK_WORKER_MARKER),
    }


# ---------------------------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class BenchConfig:
    """Options of one benchmark run."""

    limit: int | None = None
    pipeline: str = "default"
    fmt: Format = "fhir"
    skip_medspacy: bool = False
    skip_spark: bool = False
    corpus_dir: Path | None = None


def run_benchmark(config: BenchConfig) -> dict[str, Any]:
    """Every measurement on the same notes; the temporary folder is removed before this returns.

    Returns:
        The report: ``machine``, ``config``, ``corpus``, ``medspacy`` and ``spark`` (``None`` when
        skipped), ``runner`` (one entry per worker count), ``comparison`` (per-core throughput and
        core-hours, scaling, the medspaCy ratio, the Spark overhead) and ``targets``.

    Raises:
        BatchBenchmarkError: Spark was asked for and pyspark is not installed, or a run failed.
    """
    if not config.skip_spark and importlib.util.find_spec("pyspark") is None:
        raise BatchBenchmarkError("pyspark is not installed: pip install -e '.[spark]', or pass --skip-spark")
    report: dict[str, Any] = {
        "machine": machine_info(),
        "config": {
            "limit": config.limit,
            "pipeline": config.pipeline,
            "format": config.fmt,
            "thread_env": SINGLE_THREAD_ENV,
            "memory_sampling": f"psutil RSS of every process of the runner's subprocess tree (Spark: of "
            f"this process's children) every {SAMPLE_SECONDS} s",
        },
    }
    with tempfile.TemporaryDirectory(prefix="batchbench-") as tmp:
        work = Path(tmp)
        notes = write_notes(mtsamples_notes(config.limit, config.corpus_dir), work / "notes.jsonl")
        report["corpus"] = {
            "name": CORPUS,
            "notes": len(notes.texts),
            "words": notes.words,
            "chars": notes.chars,
        }
        log.info("%d MTSamples notes, %d words", len(notes.texts), notes.words)

        report["medspacy"] = None if config.skip_medspacy else run_medspacy(notes.texts)
        runs = {
            f"workers_{n}": run_runner(
                notes, work / f"runner-{n}", pipeline=config.pipeline, fmt=config.fmt, workers=n
            )
            for n in RUNNER_WORKERS
        }
        report["runner"] = runs
        report["spark"] = (
            None if config.skip_spark else run_spark(notes, work, pipeline=config.pipeline, fmt=config.fmt)
        )
    report["machine"]["load_average_at_end_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    report["comparison"] = comparison(report)
    report["targets"] = targets_met(report)
    return report


def comparison(report: Mapping[str, Any]) -> dict[str, Any]:
    """Scaling, per-core throughput and projection, medspaCy ratio and Spark overhead from the runs."""
    runs = report["runner"]
    one, two = runs.get("workers_1"), runs.get("workers_2")
    result: dict[str, Any] = {}
    if one is not None:
        result["per_core"] = {
            "notes_per_second": one["notes_per_second"],
            "words_per_second": one["words_per_second"],
            "peak_rss_mb_per_worker": one["peak_rss_mb_per_worker"],
            f"projected_core_hours_{PROJECTION_NOTES}_notes": projected_core_hours(one["notes_per_second"]),
        }
    if one is not None and two is not None:
        result["scaling_2_to_1"] = ratio(two["notes_per_second"], one["notes_per_second"])
        result["scaling_2_to_1_wall"] = ratio(two["notes_per_second_wall"], one["notes_per_second_wall"])
    medspacy = report.get("medspacy")
    if medspacy is not None and one is not None:
        result["ours_to_medspacy_time"] = ratio(one["annotate_seconds"], medspacy["seconds"])
        result["ours_to_medspacy_time_wall"] = ratio(
            one["wall_seconds"], medspacy["seconds"] + medspacy["load_seconds"]
        )
    spark = report.get("spark")
    if spark is not None and two is not None:
        result["spark_overhead_percent"] = _overhead_percent(spark["job_seconds"], two["wall_seconds"])
        result["spark_overhead_percent_with_session_start"] = _overhead_percent(
            spark["job_seconds"] + spark["session_start_seconds"], two["wall_seconds"]
        )
    return result


def _overhead_percent(seconds: float, baseline: float) -> float:
    return round((seconds - baseline) / baseline * 100, 1)


def targets_met(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the issue that this run measured, with its figure and whether it was met."""
    figures = report["comparison"]
    targets: dict[str, dict[str, Any]] = {}
    if "scaling_2_to_1" in figures:
        value = figures["scaling_2_to_1"]
        targets[f"scaling_2_workers_at_least_{TARGET_SCALING}"] = {
            "value": value,
            "met": value is not None and value >= TARGET_SCALING,
        }
    if "ours_to_medspacy_time" in figures:
        value = figures["ours_to_medspacy_time"]
        targets[f"time_within_{TARGET_MEDSPACY_RATIO:g}x_of_plain_medspacy"] = {
            "value": value,
            "met": value is not None and value <= TARGET_MEDSPACY_RATIO,
        }
    if "spark_overhead_percent" in figures:
        value = figures["spark_overhead_percent"]
        targets[f"spark_overhead_at_most_{TARGET_SPARK_OVERHEAD_PERCENT:g}_percent"] = {
            "value": value,
            "met": value <= TARGET_SPARK_OVERHEAD_PERCENT,
        }
    return targets


def is_contended(machine: Mapping[str, Any]) -> bool:
    """Other work kept more processes runnable than there are cores (1-minute load average, at the
    start or the end of the run): the speed figures are then lower than the machine's, and scaling
    with workers cannot show."""
    loads = [machine["load_average_1_5_15"][0], *machine.get("load_average_at_end_1_5_15", [0.0])[:1]]
    return max(loads) > machine["cpus_usable"]


def format_summary(report: Mapping[str, Any]) -> str:
    """A short human-readable summary of the report."""
    machine, corpus, figures = report["machine"], report["corpus"], report["comparison"]
    lines = [
        f"machine: {machine['machine']}, {machine['cpus_usable']} cores, {machine['memory_gb']} GB, "
        f"Python {machine['python']}, load avg {machine['load_average_1_5_15']} at the start, "
        f"{machine.get('load_average_at_end_1_5_15')} at the end",
        f"notes: {corpus['notes']} MTSamples notes, {corpus['words']} words, {corpus['chars']} chars; "
        f"pipeline {report['config']['pipeline']}, format {report['config']['format']}",
        f"{'run':<26}{'wall s':>9}{'annot. s':>10}{'notes/s':>9}{'words/s':>9}{'MB/work.':>9}{'cores':>7}",
    ]
    for name, run in report["runner"].items():
        lines.append(
            f"{'runner ' + name.replace('_', ' '):<26}{run['wall_seconds']:>9}{run['annotate_seconds']!s:>10}"
            f"{run['notes_per_second']:>9}{run['words_per_second']:>9}"
            f"{run['peak_rss_mb_per_worker']!s:>9}{run['cpu_cores_busy']!s:>7}"
        )
    medspacy = report.get("medspacy")
    if medspacy is not None:
        lines.append(
            f"{'plain medspaCy, 1 process':<26}{medspacy['seconds'] + medspacy['load_seconds']:>9.2f}"
            f"{medspacy['seconds']:>10}{medspacy['notes_per_second']:>9}{medspacy['words_per_second']:>9}"
        )
    spark = report.get("spark")
    if spark is not None:
        lines.append(
            f"{'Spark ' + spark['master']:<26}{spark['job_seconds']:>9}{'':>10}{spark['notes_per_second']:>9}"
            f"{'':>9}{spark['peak_rss_mb_per_worker']!s:>9}"
            f"   (+{spark['session_start_seconds']} s session start)"
        )
    if "per_core" in figures:
        per_core = figures["per_core"]
        hours = per_core[f"projected_core_hours_{PROJECTION_NOTES}_notes"]
        lines.append(
            f"per core: {per_core['notes_per_second']} notes/s, {per_core['words_per_second']} words/s, "
            f"peak {per_core['peak_rss_mb_per_worker']} MB per worker; {PROJECTION_NOTES:,} notes = "
            f"{hours:,} core-hours"
        )
    for key in (
        "scaling_2_to_1",
        "scaling_2_to_1_wall",
        "ours_to_medspacy_time",
        "ours_to_medspacy_time_wall",
        "spark_overhead_percent",
        "spark_overhead_percent_with_session_start",
    ):
        if key in figures:
            lines.append(f"{key}: {figures[key]}")
    lines.extend(
        f"target {name}: {'met' if t['met'] else 'NOT met'} ({t['value']})"
        for name, t in report["targets"].items()
    )
    if is_contended(machine):
        lines.append("WARNING: the machine was busy with other work (load average above its cores)")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The CLI options."""
    parser = argparse.ArgumentParser(
        prog="python -m nlp.batch_benchmark", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--limit", type=int, help="the first N notes (default: all MTSamples notes with text)"
    )
    parser.add_argument(
        "--pipeline", choices=sorted(PIPELINES), default="default", help="the runner's and Spark's pipeline"
    )
    parser.add_argument(
        "--format", dest="fmt", choices=["fhir", "record"], default="fhir", help="output format"
    )
    parser.add_argument("--skip-medspacy", action="store_true", help="leave out the plain medspaCy baseline")
    parser.add_argument("--skip-spark", action="store_true", help="leave out Spark local mode")
    parser.add_argument("--corpus-dir", type=Path, help="the MTSamples folder (default: ../shared/corpora)")
    parser.add_argument(
        "--output", type=Path, default=Path("out/batchbench.json"), help="where the JSON report goes"
    )
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; JSON report on stdout and in ``--output``, a summary on stderr."""
    args = parse_args(argv)
    # INFO from this project only: PyRuSH logs rule-compilation chatter at INFO on the root logger
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    for name in ("nlp", "corpora"):
        logging.getLogger(name).setLevel(logging.INFO)
    config = BenchConfig(
        limit=args.limit,
        pipeline=args.pipeline,
        fmt=args.fmt,
        skip_medspacy=args.skip_medspacy,
        skip_spark=args.skip_spark,
        corpus_dir=args.corpus_dir,
    )
    report = run_benchmark(config)
    text = json.dumps(report, indent=2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n", encoding="utf-8")
    print(format_summary(report), file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
