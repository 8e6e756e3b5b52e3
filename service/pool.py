"""Pipeline processes behind one first-come, first-served queue.

The server process answers HTTP; ``workers`` child processes each load the pipeline once and annotate
one note at a time. A request takes the next free process, so no process idles while another has a
queue (uvicorn's ``--workers`` pins each keep-alive connection to one process, and the kernel's split of
the connections decides which requests wait longest). A note
that runs past the deadline has its process killed (a running thread cannot be stopped), and a note
that kills its process fails alone; either way a fresh process is started in the background.
"""

import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from nlp.batch import describe_exit, exit_with_parent, stop_worker
from nlp.errors import InputError
from nlp.records import NoteRecord
from service.errors import DeadlineExceeded, NotReady, WorkerCrashed

if TYPE_CHECKING:
    from service.app import AnnotationPipeline, PipelineDescription

log = logging.getLogger(__name__)

# how long a new process may take to load the pipeline before the start counts as failed
START_TIMEOUT = 600.0


# what each process calls once to get its pipeline; picklable (spawned processes import it by name)
Loader = Callable[[], "AnnotationPipeline"]


def _process_main(loader: Loader, conn: Connection, parent_pid: int) -> None:
    """A pipeline process: load once, then answer one note per message until told to stop."""
    exit_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    try:
        pipe = loader()
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    # the loaded pipeline is long-lived: keep the collector from walking it again and again
    gc.collect()
    gc.freeze()
    conn.send(("ready", pipe.id, pipe.info))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            sys.stderr.flush()
            os._exit(0)  # skip the teardown of the loaded pipeline
        text, note_id, patient_id, targets = task
        try:
            record = pipe.annotate(text, note_id=note_id, patient_id=patient_id, targets=targets)
        except InputError as exc:
            conn.send(("input_error", exc.message, exc.code))
        except Exception as exc:  # one failing note must not take the process down
            log.exception("note failed in a pipeline process")
            conn.send(("error", type(exc).__name__))
        else:
            conn.send(("ok", record))


class _Process:
    def __init__(self, ctx: Any, loader: Loader) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_process_main, args=(loader, child, os.getpid()), daemon=True, name="notes2fhir-pipeline"
        )
        self.process.start()
        child.close()

    def wait_ready(self, timeout: float) -> tuple[str, "PipelineDescription"]:
        """The loaded pipeline's id and info (raises :class:`NotReady` if the process did not load it)."""
        try:
            if not self.conn.poll(timeout):
                raise NotReady(f"a pipeline process did not load the pipeline within {timeout:g} s")
            message = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise NotReady(
                f"a pipeline process died while loading ({describe_exit(self.process.exitcode)})"
            ) from exc
        if message[0] != "ready":
            raise NotReady(f"a pipeline process could not load the pipeline: {message[1]}")
        return message[1], message[2]

    def stop(self, *, kill: bool) -> None:
        stop_worker(self.process, self.conn, kill=kill)


class _Waiter:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.process: _Process | None = None


class _FirstComeFirstServed:
    """Idle processes handed to waiting callers strictly in arrival order. (``queue.Queue`` lets a
    caller that arrives just as a process is returned take it ahead of one already waiting.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: deque[_Process] = deque()
        self._waiters: deque[_Waiter] = deque()

    def put(self, process: _Process) -> None:
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.process = process
                waiter.event.set()
            else:
                self._idle.append(process)

    def get(self, timeout: float) -> _Process | None:
        """The next idle process, or ``None`` when none was handed over within ``timeout`` seconds."""
        with self._lock:
            if self._idle:
                return self._idle.popleft()
            waiter = _Waiter()
            self._waiters.append(waiter)
        if waiter.event.wait(timeout):
            return waiter.process
        with self._lock:
            if not waiter.event.is_set():
                self._waiters.remove(waiter)
        return waiter.process  # handed over just as the wait ended, or None

    def drain(self) -> list[_Process]:
        """Take every idle process."""
        with self._lock:
            idle = list(self._idle)
            self._idle.clear()
        return idle


class PipelineProcesses:
    """``size`` pipeline processes serving :meth:`annotate` calls from any thread, first come first served.

    Args:
        loader: what each process calls once to get its pipeline, picklable
            (e.g. ``functools.partial(nlp.batch.load_warm, name, max_chars)``).
        size: processes (at least 1).
        timeout: seconds a call may take, waiting included; past it the call raises
            :class:`DeadlineExceeded` and a process still running the note is killed and replaced.
        start_timeout: seconds a process may take to load the pipeline.

    Raises:
        NotReady: a process could not load the pipeline at start-up.
    """

    def __init__(
        self, loader: Loader, size: int, *, timeout: float, start_timeout: float = START_TIMEOUT
    ) -> None:
        if size < 1:
            raise ValueError("PipelineProcesses needs at least one process")
        self._ctx = multiprocessing.get_context("spawn")
        self._loader, self._timeout, self._start_timeout = loader, timeout, start_timeout
        self._idle = _FirstComeFirstServed()
        self._lock = threading.Lock()
        self._live: set[_Process] = set()
        self._closed = False
        self.restarts = 0
        started = [_Process(self._ctx, loader) for _ in range(size)]
        self._live.update(started)
        try:
            ids = [process.wait_ready(start_timeout) for process in started]
        except BaseException:
            self.close()
            raise
        self._pipeline_id, self._info = ids[0]
        for process in started:
            self._idle.put(process)

    @property
    def id(self) -> str:
        return self._pipeline_id

    @property
    def info(self) -> "PipelineDescription":
        return self._info

    @property
    def live(self) -> int:
        """Processes loaded or loading (fewer than ``size`` only while a replacement failed)."""
        with self._lock:
            return len(self._live)

    def annotate(
        self,
        text: str,
        *,
        note_id: str | None = None,
        patient_id: str | None = None,
        targets: Sequence[tuple[int, int, str]] | None = None,
    ) -> NoteRecord:
        """Annotate one note in the next free process (the same contract as :meth:`nlp.Pipeline.annotate`).

        Raises:
            InputError: the note cannot be read (empty, too long, NUL, lone surrogate, bad targets).
            DeadlineExceeded: no process was free in time, or the note ran past the timeout.
            WorkerCrashed: the process died while annotating this note.
            NotReady: the pool is closed.
        """
        expires = time.monotonic() + self._timeout
        task = (text, note_id, patient_id, list(targets) if targets is not None else None)
        process = self._send(task, expires)
        try:
            if not process.conn.poll(max(0.0, expires - time.monotonic())):
                log.warning("a note ran past %g s; killing and replacing its pipeline process", self._timeout)
                self._replace(process)
                raise DeadlineExceeded(f"the note took longer than {self._timeout:g} s; it was stopped")
            message = process.conn.recv()
        except (EOFError, OSError):
            process.process.join(timeout=1)
            how = describe_exit(process.process.exitcode)
            log.error("a pipeline process died (%s) while annotating a note; replacing it", how)
            self._replace(process)
            raise WorkerCrashed(f"the pipeline process died ({how}) while annotating this note") from None
        self._idle.put(process)
        kind = message[0]
        if kind == "ok":
            record: NoteRecord = message[1]
            return record
        if kind == "input_error":
            raise InputError(message[1], code=message[2])
        raise RuntimeError(f"{message[1]} in the pipeline process")

    def _send(self, task: tuple[Any, ...], expires: float) -> _Process:
        """Hand ``task`` to the next free process. One that died while idle (an OOM kill between two
        notes) is replaced and the note goes to the next: the note never ran, so it did not crash it.

        Raises:
            DeadlineExceeded: no live process was free before ``expires``.
            NotReady: the pool is closed.
        """
        while True:
            process = self._idle.get(max(0.0, expires - time.monotonic()))
            if process is None:
                raise DeadlineExceeded(f"no pipeline process was free within {self._timeout:g} s")
            if self._closed:
                raise NotReady("the service is shutting down")
            if process.process.is_alive():
                try:
                    process.conn.send(task)
                    return process
                except OSError:
                    pass
            how = describe_exit(process.process.exitcode)
            log.error("a pipeline process died (%s) while idle; replacing it", how)
            self._replace(process)

    def _replace(self, process: _Process) -> None:
        """Kill ``process`` and start its successor; it joins the queue once it has loaded the pipeline."""
        process.stop(kill=True)
        with self._lock:
            self._live.discard(process)
            if self._closed:
                return
            self.restarts += 1
            successor = _Process(self._ctx, self._loader)
            self._live.add(successor)
        threading.Thread(target=self._admit, args=(successor,), daemon=True, name="pipeline-start").start()

    def _admit(self, process: _Process) -> None:
        try:
            identity = process.wait_ready(self._start_timeout)
        except NotReady as exc:
            with self._lock:
                self._live.discard(process)
                closed = self._closed
            if not closed:
                log.error("a replacement pipeline process failed: %s", exc.message)
                process.stop(kill=True)
            return
        if identity[0] != self._pipeline_id:
            log.error("a replacement pipeline process loaded %s, not %s", identity[0], self._pipeline_id)
            with self._lock:
                self._live.discard(process)
            process.stop(kill=True)
            return
        self._idle.put(process)

    def close(self) -> None:
        """Stop every process: idle ones are asked to exit, busy or loading ones are killed."""
        with self._lock:
            self._closed = True
            live = list(self._live)
            self._live.clear()
        idle = set(self._idle.drain())
        for process in live:
            process.stop(kill=process not in idle)
