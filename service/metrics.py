"""Prometheus metrics of one app. Labels are routes, methods, statuses and error codes: never note data."""

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServiceMetrics:
    """The service's counters on a registry of its own (so several apps can live in one process)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "notes2fhir_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "notes2fhir_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.notes_annotated = Counter(
            "notes2fhir_notes_annotated", "notes annotated successfully", registry=self.registry
        )
        self.note_errors = Counter(
            "notes2fhir_note_errors",
            "notes refused or failed, by error code",
            ["code"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "notes2fhir_annotations_in_flight", "annotation requests running now", registry=self.registry
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
