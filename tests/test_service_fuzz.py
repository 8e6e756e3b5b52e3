"""Fuzzing the HTTP service: schemathesis from its OpenAPI schema, and raw JSON with hostile strings.

Both run on the fake pipeline of ``tests/test_service.py``. The invariants: never a 5xx, every answer
matches the documented schema, and a note's text never comes back in an answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.config import Settings
from tests.test_service import MARKER, NOTE, FakePipeline

FUZZ_SETTINGS = Settings(max_chars=200, max_batch=5, static_dir=Path("/nonexistent-page"))
# schemathesis keeps the lifespan of its app running for the whole session: the raw fuzz gets its own app
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(FUZZ_SETTINGS, pipeline_factory=lambda _: FakePipeline())
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(FUZZ_SETTINGS, pipeline_factory=lambda _: FakePipeline())) as started:
        yield started


# strings with what breaks encoders: lone surrogates, NUL, controls, astral characters
hostile_chars = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from(["\x00", "\n", "\u2028", "\ufeff", "\U0001f600", '"', "\\"]),
)
hostile_text = st.text(hostile_chars, max_size=50)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=20,
)
# notes whose text holds the marker, with arbitrary other fields
notes = st.fixed_dictionaries(
    {"text": st.builds(lambda a, b: f"{a}{MARKER}{b}", hostile_text, hostile_text)},
    optional={
        "id": json_values,
        "patient_id": json_values,
        "targets": st.lists(st.tuples(st.integers(-5, 300), st.integers(-5, 300), hostile_text), max_size=3)
        | json_values,
    },
)
bodies = st.one_of(json_values, notes, st.fixed_dictionaries({"notes": st.lists(notes, max_size=6)}))


def assert_safe(response: object, *, marker_sent: bool) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert status < 500, text
    if marker_sent:
        assert MARKER not in text
    if status >= 400:
        error = response.json()["error"]  # type: ignore[attr-defined]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


@pytest.mark.parametrize("path", ["/v1/annotate", "/v1/annotate/batch", "/v1/annotate?format=fhir"])
@given(body=bodies)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_raw_json_never_5xx_never_echoed(client: TestClient, path: str, body: object) -> None:
    content = json.dumps(body).encode()  # ASCII escapes: lone surrogates travel as \udXXX
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert_safe(response, marker_sent=MARKER in content.decode())


@given(raw=st.binary(max_size=200))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_raw_bytes_never_5xx(client: TestClient, raw: bytes) -> None:
    response = client.post("/v1/annotate", content=raw, headers={"Content-Type": "application/json"})
    assert_safe(response, marker_sent=False)


DEEP = 5000
EXTREMES = [
    ("deep arrays", b"[" * DEEP + b"]" * DEEP, 400),
    ("deep objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP, 400),
    (
        "deep targets",
        json.dumps({"text": NOTE, "targets": "X"}).replace('"X"', "[" * DEEP + "]" * DEEP).encode(),
        400,
    ),
    ("2 MB text", json.dumps({"text": MARKER * 90_000}).encode(), 413),
    ("900 kB text", json.dumps({"text": MARKER * 37_000}).encode(), 422),
    ("surrogate pair halves", json.dumps({"text": f"{MARKER}\udc00\ud800"}).encode(), 422),
    ("NUL", json.dumps({"text": f"{MARKER}\x00"}).encode(), 422),
    ("UTF-8-encoded surrogate", b'{"text": "' + MARKER.encode() + b'\xed\xa0\x80"}', 422),
    ("invalid UTF-8", b'{"text": "' + MARKER.encode() + b'\xff"}', 400),
    ("NaN", b'{"text": NaN}', 422),
    (
        "huge number",
        b'{"text": "' + MARKER.encode() + b'", "targets": [[1' + b"0" * 5000 + b', 2, "X"]]}',
        400,
    ),
]


@pytest.mark.parametrize(("name", "body", "status"), EXTREMES, ids=[name for name, _, _ in EXTREMES])
def test_extreme_bodies(client: TestClient, name: str, body: bytes, status: int) -> None:
    response = client.post("/v1/annotate", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert_safe(response, marker_sent=True)
