"""The HTTP service: routes, limits, auth, errors and privacy on a fake pipeline, and once on the real one."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import nlp
from nlp.errors import InputError
from nlp.pipeline import PipelineInfo, validate_text
from nlp.records import Mention, NoteRecord, text_hash
from service.app import create_app
from service.config import Settings
from service.schemas import SYNTHETIC_NOTE

# a string that must never come back in a body or a log line
MARKER = "ZQXJ-PATIENT-SECRET-4711"
PROBLEM = "chest pain"
MAX_CHARS = 200


class FakePipeline:
    """Real validation and real records; one PROBLEM mention per "chest pain" (or the given targets).

    Texts with ``CRASH`` raise a non-input error, ``SLOW`` sleep ``delay`` seconds and ``BLOCK`` wait
    for :attr:`release` (setting :attr:`entered` first).
    """

    id = "notes2fhir-fake@0.0.0"
    info = PipelineInfo(
        name="fake",
        version="0.0.0",
        fingerprint="0123456789ab",
        components=("clinical_lexicon",),
        labels=("PROBLEM",),
        max_chars=MAX_CHARS,
    )

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.entered = threading.Event()
        self.release = threading.Event()

    def annotate(
        self,
        text: str,
        *,
        note_id: str | None = None,
        patient_id: str | None = None,
        targets: Sequence[tuple[int, int, str]] | None = None,
    ) -> NoteRecord:
        validate_text(text, MAX_CHARS)
        if "CRASH" in text:
            raise RuntimeError(f"fake failure on {text!r}")
        if "SLOW" in text:
            time.sleep(self.delay)
        if "BLOCK" in text:
            self.entered.set()
            assert self.release.wait(10)
        if targets is None:
            start = text.find(PROBLEM)
            targets = [(start, start + len(PROBLEM), "PROBLEM")] if start >= 0 else []
        for start, end, _ in targets:
            if not 0 <= start < end <= len(text):
                raise InputError(f"target ({start}, {end}) is outside the note", code="invalid_targets")
        mentions = tuple(
            Mention(
                id=f"m{i}",
                label=label,
                text=text[start:end],
                start=start,
                end=end,
                section=None,
                assertion="present",
                subject="patient",
                source="fake",
            )
            for i, (start, end, label) in enumerate(targets)
        )
        return NoteRecord(
            note_id=note_id or "note-fake",
            patient_id=patient_id,
            text_sha256=text_hash(text),
            text_length=len(text),
            pipeline=self.id,
            mentions=mentions,
        )


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """``make_client(pipeline=..., **settings)``: a started TestClient (lifespan run) on a fake pipeline."""
    with ExitStack() as stack:

        def make(pipeline: Any = None, **overrides: Any) -> TestClient:
            fake = pipeline if pipeline is not None else FakePipeline()
            settings = Settings(**{"max_chars": MAX_CHARS, "static_dir": tmp_path / "no-page", **overrides})
            app = create_app(settings, pipeline_factory=lambda _: fake)
            return stack.enter_context(TestClient(app))

        yield make


def post_json(client: TestClient, path: str, body: object, **kwargs: Any) -> Any:
    """POST ``body`` as ASCII-escaped JSON, so lone surrogates travel as ``\\udXXX`` escapes."""
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return client.post(path, content=json.dumps(body).encode(), headers=headers, **kwargs)


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert isinstance(response.json()["error"]["message"], str)
    assert MARKER not in response.text


NOTE = f"{MARKER}: denies {PROBLEM}."


# ---------------------------------------------------------------------------------------------- routes
@pytest.mark.parametrize(
    ("method", "path", "body", "check"),
    [
        ("GET", "/health/live", None, lambda j: j == {"status": "ok"}),
        ("GET", "/health/ready", None, lambda j: j == {"status": "ok"}),
        (
            "GET",
            "/v1/info",
            None,
            lambda j: (
                j["service"] == "notes2fhir"
                and j["pipeline"] == FakePipeline.id
                and j["fingerprint"] == "0123456789ab"
                and j["labels"] == ["PROBLEM"]
                and j["version"] == nlp.__version__
                and j["limits"]
                == {
                    "max_chars": MAX_CHARS,
                    "max_batch": 25,
                    "max_body_bytes": 1_048_576,
                    "workers": 0,
                    "max_in_flight": 4,
                    "deadline_seconds": 30.0,
                }
            ),
        ),
        (
            "POST",
            "/v1/annotate",
            {"id": "n1", "text": NOTE, "patient_id": "p1"},
            lambda j: (
                j["note_id"] == "n1"
                and j["patient_id"] == "p1"
                and [(m["text"], m["label"]) for m in j["mentions"]] == [(PROBLEM, "PROBLEM")]
            ),
        ),
        (
            "POST",
            "/v1/annotate?format=record",
            {"text": NOTE, "targets": [[0, 4, "DRUG"]]},
            lambda j: [(m["text"], m["label"]) for m in j["mentions"]] == [("ZQXJ", "DRUG")],
        ),
        (
            "POST",
            "/v1/annotate?format=fhir",
            {"id": "n1", "text": NOTE, "patient_id": "p1"},
            lambda j: j["resourceType"] == "Bundle" and len(j["entry"]) >= 1,
        ),
        (
            "POST",
            "/v1/annotate/batch",
            {"notes": [{"id": "a", "text": NOTE}, {"id": "b", "text": "no findings"}]},
            lambda j: [(r["id"], len(r["record"]["mentions"])) for r in j["results"]] == [("a", 1), ("b", 0)],
        ),
        (
            "POST",
            "/v1/annotate/batch?format=fhir",
            {"notes": [{"id": "a", "text": NOTE}]},
            lambda j: j["results"][0]["id"] == "a" and j["results"][0]["bundle"]["resourceType"] == "Bundle",
        ),
    ],
)
def test_route_answers(
    make_client: Callable[..., TestClient], method: str, path: str, body: object, check: Callable[[Any], bool]
) -> None:
    client = make_client()
    response = client.request(method, path, json=body)
    assert response.status_code == 200, response.text
    assert check(response.json())
    assert response.headers["X-Request-ID"]


def test_metrics_count_requests_notes_and_error_codes(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    post_json(client, "/v1/annotate", {"id": MARKER, "text": NOTE})
    post_json(client, "/v1/annotate/batch", {"notes": [{"text": " "}, {"text": "a\x00"}]})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'notes2fhir_http_requests_total{method="POST",route="/v1/annotate",status="200"} 1.0' in text
    assert 'notes2fhir_http_request_duration_seconds_count{route="/v1/annotate/batch"} 1.0' in text
    assert "notes2fhir_notes_annotated_total 1.0" in text
    assert 'notes2fhir_note_errors_total{code="empty_text"} 1.0' in text
    assert 'notes2fhir_note_errors_total{code="nul_byte"} 1.0' in text
    assert "notes2fhir_annotations_in_flight 0.0" in text
    assert MARKER not in text


# ---------------------------------------------------------------------------------------------- bad notes
BAD_NOTES: list[tuple[dict[str, Any], str]] = [
    ({"text": ""}, "empty_text"),
    ({"text": "  \n\t "}, "empty_text"),
    ({"text": f"{MARKER}\x00"}, "nul_byte"),
    ({"text": f"{MARKER} \ud800"}, "lone_surrogate"),
    ({"text": MARKER * 20}, "text_too_long"),
    ({"text": NOTE, "targets": [[0, 9999, "PROBLEM"]]}, "invalid_targets"),
]


@pytest.mark.parametrize(("note", "code"), BAD_NOTES)
def test_bad_note_is_422_with_its_code(make_client: Callable[..., TestClient], note: dict, code: str) -> None:
    assert_error(post_json(make_client(), "/v1/annotate", note), 422, code)


@pytest.mark.parametrize("output_format", ["record", "fhir"])
def test_batch_answers_each_note_in_order(make_client: Callable[..., TestClient], output_format: str) -> None:
    notes = [{"id": f"bad-{i}", **note} for i, (note, _) in enumerate(BAD_NOTES)]
    notes.insert(2, {"id": "good", "text": NOTE})
    notes.append({"id": "crash", "text": f"CRASH {MARKER}"})
    response = post_json(make_client(), f"/v1/annotate/batch?format={output_format}", {"notes": notes})
    assert response.status_code == 200, response.text
    assert MARKER not in response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == [n["id"] for n in notes]
    outcome = [r["error"]["code"] if "error" in r else next(iter(set(r) - {"id"})) for r in results]
    expected = [code for _, code in BAD_NOTES]
    expected.insert(2, "bundle" if output_format == "fhir" else "record")
    assert outcome == [*expected, "internal_error"]


@pytest.mark.parametrize(("max_batch", "count", "status"), [(2, 2, 200), (2, 3, 422), (25, 26, 422)])
def test_batch_size_limit(
    make_client: Callable[..., TestClient], max_batch: int, count: int, status: int
) -> None:
    client = make_client(max_batch=max_batch)
    response = post_json(client, "/v1/annotate/batch", {"notes": [{"text": NOTE}] * count})
    if status == 200:
        assert len(response.json()["results"]) == count
    else:
        assert_error(response, 422, "batch_too_large")


# ---------------------------------------------------------------------------------------------- body limit
def _chunks(size: int) -> Iterator[bytes]:
    body = json.dumps({"text": "x" * size}).encode()
    for i in range(0, len(body), 1000):
        yield body[i : i + 1000]


@pytest.mark.parametrize(
    ("how", "text_chars", "status"),
    [("header", 100, 200), ("header", 5000, 413), ("streamed", 100, 200), ("streamed", 5000, 413)],
)
def test_body_limit_by_header_and_by_streamed_size(
    make_client: Callable[..., TestClient], how: str, text_chars: int, status: int
) -> None:
    client = make_client(max_body_bytes=2048, max_chars=10_000)
    if how == "header":
        response = client.post("/v1/annotate", json={"text": "x" * text_chars})
        assert response.request.headers["content-length"]
    else:  # a generator body has no Content-Length: the bytes are counted as they stream in
        response = client.post(
            "/v1/annotate", content=_chunks(text_chars), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in response.request.headers
    if status == 413:
        assert_error(response, 413, "body_too_large")
    else:
        assert response.status_code == 200, response.text


def test_lying_content_length_is_refused_before_the_body(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=2048)
    response = client.get("/health/live", headers={"Content-Length": "999999"})
    assert_error(response, 413, "body_too_large")


# ---------------------------------------------------------------------------------------------- auth
@pytest.mark.parametrize(
    ("api_key", "sent", "path", "status"),
    [
        (None, None, "/v1/info", 200),
        (None, "anything", "/v1/info", 200),
        ("s3cret", None, "/v1/info", 401),
        ("s3cret", "wrong", "/v1/info", 401),
        ("s3cret", "s3cret", "/v1/info", 200),
        ("s3cret", None, "/v1/annotate", 401),
        ("s3cret", "s3cret", "/v1/annotate", 200),
        ("s3cret", None, "/v1/annotate/batch", 401),
        ("s3cret", None, "/health/live", 200),
        ("s3cret", None, "/health/ready", 200),
        ("s3cret", None, "/metrics", 200),
    ],
)
def test_api_key(
    make_client: Callable[..., TestClient], api_key: str | None, sent: str | None, path: str, status: int
) -> None:
    client = make_client(api_key=api_key)
    headers = {"X-API-Key": sent} if sent is not None else {}
    if path.startswith("/v1/annotate"):
        body = {"notes": [{"text": NOTE}]} if path.endswith("batch") else {"text": NOTE}
        response = post_json(client, path, body, headers=headers)
    else:
        response = client.get(path, headers=headers)
    if status == 401:
        assert_error(response, 401, "unauthorized")
    else:
        assert response.status_code == status, response.text


# ---------------------------------------------------------------------------------------------- overload
@pytest.mark.parametrize("path", ["/v1/annotate", "/v1/annotate/batch"])
def test_no_free_slot_is_503_with_retry_after(make_client: Callable[..., TestClient], path: str) -> None:
    body = {"notes": [{"text": NOTE}]} if path.endswith("batch") else {"text": NOTE}
    response = post_json(make_client(max_in_flight=0), path, body)
    assert_error(response, 503, "overloaded")
    assert response.headers["Retry-After"] == "1"


def test_slots_are_shared_by_concurrent_requests(make_client: Callable[..., TestClient]) -> None:
    fake = FakePipeline()
    client = make_client(pipeline=fake, max_in_flight=1)
    first: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: first.update(r=post_json(client, "/v1/annotate", {"text": "BLOCK"}))
    )
    worker.start()
    try:
        assert fake.entered.wait(10)
        busy = post_json(client, "/v1/annotate", {"text": NOTE})
        assert_error(busy, 503, "overloaded")
        assert client.get("/health/live").status_code == 200  # probes never wait for a slot
    finally:
        fake.release.set()
        worker.join(10)
    assert first["r"].status_code == 200
    assert post_json(client, "/v1/annotate", {"text": NOTE}).status_code == 200  # the slot came back


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/annotate", {"text": "SLOW"}),
        ("/v1/annotate/batch", {"notes": [{"text": "SLOW"}, {"text": NOTE}]}),
        ("/v1/annotate/batch", {"notes": [{"text": NOTE}, {"text": "SLOW"}]}),
    ],
)
def test_deadline_exceeded_is_503(make_client: Callable[..., TestClient], path: str, body: dict) -> None:
    client = make_client(pipeline=FakePipeline(delay=0.2), deadline_seconds=0.1)
    assert_error(post_json(client, path, body), 503, "deadline_exceeded")
    assert post_json(client, "/v1/annotate", {"text": NOTE}).status_code == 200


def test_not_ready_before_the_pipeline_is_loaded(tmp_path: Path) -> None:
    app = create_app(Settings(static_dir=tmp_path), pipeline_factory=lambda _: FakePipeline())
    client = TestClient(app)  # not entered: the lifespan has not run
    assert client.get("/health/live").status_code == 200
    assert_error(client.get("/health/ready"), 503, "not_ready")
    assert_error(post_json(client, "/v1/annotate", {"text": NOTE}), 503, "not_ready")


# ---------------------------------------------------------------------------------------------- CORS
@pytest.mark.parametrize(
    ("origins", "allowed"),
    [([], None), (["https://ehr.example.org"], "https://ehr.example.org")],
)
def test_cors_off_by_default_on_when_configured(
    make_client: Callable[..., TestClient], origins: list[str], allowed: str | None
) -> None:
    client = make_client(cors_origins=origins)
    preflight = client.options(
        "/v1/annotate",
        headers={
            "Origin": "https://ehr.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert preflight.headers.get("access-control-allow-origin") == allowed
    simple = client.get("/health/live", headers={"Origin": "https://ehr.example.org"})
    assert simple.headers.get("access-control-allow-origin") == allowed
    other = client.get("/health/live", headers={"Origin": "https://evil.example.com"})
    assert other.headers.get("access-control-allow-origin") is None


# ---------------------------------------------------------------------------------------------- no echo
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"id": "n1", "patient_id": MARKER}, 422, "invalid_request"),  # text missing
        ({"text": 42, "id": MARKER}, 422, "invalid_request"),
        ({"text": NOTE, "targets": [[0, MARKER, "PROBLEM"]]}, 422, "invalid_request"),
        ({"text": NOTE, "targets": MARKER}, 422, "invalid_request"),
        ({"text": NOTE, "id": f"{MARKER}\ud800"}, 422, "invalid_request"),
        ({"text": NOTE, "id": MARKER * 20}, 422, "invalid_request"),
        ({"notes": [{"text": NOTE}]}, 422, "invalid_request"),  # a batch body sent to the single route
        ([NOTE], 422, "invalid_request"),
        (f'{{"text": "{MARKER}"'.encode(), 422, "invalid_request"),  # malformed JSON
        (b'{"text": "\xff' + MARKER.encode() + b'"}', 400, "malformed_request"),
        (b"[" * 5000 + b"]" * 5000, 400, "malformed_request"),  # nesting past the JSON parser's depth
    ],
)
def test_errors_never_echo_the_input(
    make_client: Callable[..., TestClient], body: object, status: int, code: str
) -> None:
    client = make_client()
    if isinstance(body, bytes):
        response = client.post("/v1/annotate", content=body, headers={"Content-Type": "application/json"})
    else:
        response = post_json(client, "/v1/annotate", body)
    assert_error(response, status, code)
    if code == "invalid_request":
        details = response.json()["error"]["details"]
        assert details and all(set(d) == {"loc", "type"} for d in details)


def test_unknown_format_and_route_keep_the_error_shape(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    assert_error(post_json(client, f"/v1/annotate?format={MARKER}", {"text": NOTE}), 422, "invalid_request")
    assert_error(client.get(f"/v1/{MARKER}"), 404, "not_found")
    assert_error(client.get("/v1/annotate"), 405, "method_not_allowed")


def test_crash_is_500_without_details(make_client: Callable[..., TestClient]) -> None:
    response = post_json(make_client(), "/v1/annotate", {"text": f"CRASH {MARKER}"})
    assert_error(response, 500, "internal_error")
    assert "RuntimeError" not in response.text


def test_logs_never_contain_note_text(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    caplog.set_level(logging.DEBUG)
    for note, _ in BAD_NOTES:
        post_json(client, "/v1/annotate", note)
    post_json(client, "/v1/annotate", {"text": NOTE, "id": "n1"})
    post_json(client, "/v1/annotate", {"text": f"CRASH {MARKER}"})
    post_json(
        client, "/v1/annotate/batch", {"notes": [{"text": f"CRASH {MARKER}"}, {"text": f"{MARKER}\x00"}]}
    )
    post_json(client, "/v1/annotate", {"id": MARKER})
    lines = [record.getMessage() for record in caplog.records]
    assert any("note refused code=nul_byte" in line for line in lines)
    assert any("unhandled RuntimeError" in line for line in lines)
    assert any("POST /v1/annotate -> 422" in line for line in lines)
    assert not [line for line in lines if MARKER in line or "ZQXJ" in line]
    assert all(MARKER not in (record.exc_text or "") for record in caplog.records)


@pytest.mark.parametrize(
    ("sent", "kept"), [("abc-123.x_Y", True), ("bad id with spaces", False), (MARKER + "!" * 70, False)]
)
def test_request_id_is_kept_only_when_safe(
    make_client: Callable[..., TestClient], sent: str, kept: bool
) -> None:
    response = make_client().get("/health/live", headers={"X-Request-ID": sent})
    assert (response.headers["X-Request-ID"] == sent) is kept
    assert len(response.headers["X-Request-ID"]) <= 64


# ---------------------------------------------------------------------------------------------- page, schema
@pytest.mark.parametrize("with_page", [True, False])
def test_page_is_mounted_only_if_its_folder_exists(
    make_client: Callable[..., TestClient], tmp_path: Path, with_page: bool
) -> None:
    page = tmp_path / "page"
    if with_page:
        page.mkdir()
        (page / "index.html").write_text("<!doctype html><title>notes2fhir</title>", "utf-8")
    client = make_client(static_dir=page)
    response = client.get("/")
    if with_page:
        assert response.status_code == 200 and "<title>notes2fhir</title>" in response.text
    else:
        assert_error(response, 404, "not_found")
    label = "page" if with_page else "unmatched"
    assert f'route="{label}",status="{response.status_code}"' in client.get("/metrics").text


def test_openapi_documents_every_error_and_has_examples(make_client: Callable[..., TestClient]) -> None:
    schema = make_client().get("/openapi.json").json()
    documented = {path: set(ops[next(iter(ops))]["responses"]) for path, ops in schema["paths"].items()}
    assert documented["/v1/annotate"] >= {"200", "400", "401", "413", "422", "500", "503"}
    assert documented["/v1/annotate/batch"] >= {"200", "400", "401", "413", "422", "500", "503"}
    assert documented["/v1/info"] >= {"200", "401", "413", "500", "503"}
    assert documented["/health/ready"] >= {"200", "503"}
    assert schema["components"]["schemas"]["NoteIn"]["examples"][0]["text"] == SYNTHETIC_NOTE
    assert schema["components"]["schemas"]["BatchIn"]["examples"]


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"NOTES2FHIR_MAX_BATCH": "3"}, "max_batch", 3),
        ({"NOTES2FHIR_CORS_ORIGINS": '["https://a.example"]'}, "cors_origins", ["https://a.example"]),
        ({"NOTES2FHIR_DEADLINE_SECONDS": "2.5"}, "deadline_seconds", 2.5),
        ({}, "api_key", None),
    ],
)
def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str, value: object
) -> None:
    for name, setting in env.items():
        monkeypatch.setenv(name, setting)
    assert getattr(Settings(), field) == value


# ---------------------------------------------------------------------------------------------- real pipeline
@pytest.fixture(scope="module")
def real_client(pipe: nlp.Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), pipeline_factory=lambda _: pipe)) as client:
        yield client


def test_real_pipeline_end_to_end(real_client: TestClient, pipe: nlp.Pipeline) -> None:
    info = real_client.get("/v1/info").json()
    assert info["pipeline"] == pipe.id and info["fingerprint"] == pipe.info.fingerprint
    record = real_client.post("/v1/annotate", json={"id": "n1", "text": SYNTHETIC_NOTE}).json()
    assert record == pipe.annotate(SYNTHETIC_NOTE, note_id="n1").model_dump(mode="json", by_alias=True)
    assert {"hypertension", "lisinopril"} <= {m["text"].lower() for m in record["mentions"]}
    bundle = real_client.post("/v1/annotate?format=fhir", json={"id": "n1", "text": SYNTHETIC_NOTE}).json()
    assert bundle["resourceType"] == "Bundle"
    batch = post_json(
        real_client, "/v1/annotate/batch", {"notes": [{"text": "\ud800"}, {"text": SYNTHETIC_NOTE}]}
    )
    first, second = batch.json()["results"]
    assert first["error"]["code"] == "lone_surrogate" and second["record"]["mentions"]
