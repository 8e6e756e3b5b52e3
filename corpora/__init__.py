"""Readers for public corpora (read in place from ``../shared/corpora``) and our synthetic samples.

``corpora/samples/`` holds synthetic notes written for this project; no corpus file is copied here.
``load(name)`` returns a ``datasets.DatasetDict`` keyed by split with one schema for every corpus
(see ``corpora.base``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import datasets

from corpora import (
    aci_bench,  # noqa: F401  (registers the corpus)
    ade_corpus_v2,  # noqa: F401  (registers the corpus)
    bc5cdr,  # noqa: F401  (registers the corpus)
    bioscope,  # noqa: F401  (registers the corpus)
    chia,  # noqa: F401  (registers the corpus)
    ddi_corpus,  # noqa: F401  (registers the corpus)
    mtsamples,  # noqa: F401  (registers the corpus)
    ncbi_disease,  # noqa: F401  (registers the corpus)
    phee,  # noqa: F401  (registers the corpus)
    tac2017_adr,  # noqa: F401  (registers the corpus)
)
from corpora.base import (
    ENV_VAR,
    HOUSE_LABELS,
    REGISTRY,
    CorpusFormatError,
    CorpusNotFoundError,
    CorpusSpec,
    corpus_path,
    get_spec,
    to_dataset_dict,
)

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"

__all__ = [
    "ENV_VAR",
    "HOUSE_LABELS",
    "REGISTRY",
    "SAMPLES_DIR",
    "CorpusFormatError",
    "CorpusNotFoundError",
    "CorpusSpec",
    "corpus_path",
    "get_spec",
    "load",
]


def load(
    name: str, split: str | None = None, corpus_dir: str | os.PathLike[str] | None = None
) -> datasets.DatasetDict | datasets.Dataset:
    """Corpus ``name`` as a DatasetDict of its splits, or one ``split`` of it as a Dataset."""
    dd = _load(name, str(corpus_path(name, corpus_dir)))
    if split is None:
        return dd
    if split not in dd:
        raise CorpusNotFoundError(f"{name} has no split {split!r}; it has {', '.join(dd)}")
    return dd[split]


@lru_cache(maxsize=16)
def _load(name: str, folder: str) -> datasets.DatasetDict:
    return to_dataset_dict(get_spec(name).reader(Path(folder)))
