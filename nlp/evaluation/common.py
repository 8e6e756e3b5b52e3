"""What every evaluation report shares: the corpus rows or case files it reads and the header it
starts with."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import corpora
from nlp.errors import InputError

if TYPE_CHECKING:
    from nlp.pipeline import Pipeline


class _Case(Protocol):
    @property
    def id(self) -> str: ...


CaseT = TypeVar("CaseT", bound=_Case)


def read_case_file(path: str | os.PathLike[str], parse: Callable[[dict[str, Any]], CaseT]) -> list[CaseT]:
    """The cases of a ``.jsonl`` case file, one JSON object a line (blank lines skipped).

    Args:
        path: the file.
        parse: one decoded line -> a case with an ``id``; raises ``ValueError``, ``TypeError`` or
            ``KeyError`` for a line that is not a valid case.

    Raises:
        InputError: ``unreadable_input`` if the file cannot be read as UTF-8; ``malformed_record``
            (``path:line: ...``) for an invalid line or a repeated id, or a file without cases.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {exc}", code="unreadable_input") from exc
    cases: list[CaseT] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            case = parse(json.loads(line))
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"{where}: {exc}", code="malformed_record") from exc
        if case.id in seen:
            raise InputError(f"{where}: duplicate id {case.id!r}", code="malformed_record")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise InputError(f"{path}: no cases", code="malformed_record")
    return cases


def locate(text: str, mention: str, occurrence: int = 1) -> tuple[int, int]:
    """The offsets of the ``occurrence``-th (1-based) ``mention`` in ``text``.

    Raises:
        ValueError: it occurs fewer times.
    """
    start = -1
    for _ in range(occurrence):
        start = text.find(mention, start + 1)
        if start < 0:
            raise ValueError(f"{mention!r} does not occur {occurrence} time(s) in the text")
    return start, start + len(mention)


def corpus_rows(
    name: str, split: str, corpus_dir: str | os.PathLike[str] | None, limit: int | None
) -> list[dict[str, Any]]:
    """The rows of a corpus split, the first ``limit`` of them when given."""
    dataset = corpora.load(name, split=split, corpus_dir=corpus_dir)
    return list(dataset) if limit is None else list(dataset.select(range(min(limit, len(dataset)))))


def report_header(
    task: str,
    pipe: Pipeline,
    corpus: str,
    split: str | None,
    documents: int,
    texts: Iterable[str],
    elapsed: float,
) -> dict[str, Any]:
    """Task, source, pipeline (with the fingerprint of its rules and models), size, speed and machine."""
    words = sum(len(t.split()) for t in texts)
    return {
        "task": task,
        "corpus": corpus,
        "split": split,
        "pipeline": pipe.id,
        "fingerprint": pipe.info.fingerprint,  # changes with any rule or lexicon file
        "documents": documents,
        "words": words,
        "seconds": round(elapsed, 1),
        "words_per_s": round(words / elapsed) if elapsed else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
