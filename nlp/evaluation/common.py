"""What every evaluation report shares: the corpus rows it reads and the header it starts with."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import corpora

if TYPE_CHECKING:
    from nlp.pipeline import Pipeline


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
