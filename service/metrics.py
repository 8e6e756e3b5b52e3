"""Prometheus metrics of one app. Labels are routes, methods, statuses and error codes: never note data."""

from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ProcessPool(Protocol):
    """What the metrics read from :class:`service.pool.PipelineProcesses`."""

    @property
    def live(self) -> int: ...
    @property
    def restarts(self) -> int: ...


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

    def watch_processes(self, pool: ProcessPool) -> None:
        """Report the pipeline processes alive and how often one was replaced (timeouts, crashes)."""
        Gauge(
            "notes2fhir_pipeline_processes", "pipeline processes loaded or loading", registry=self.registry
        ).set_function(lambda: pool.live)
        Gauge(
            "notes2fhir_pipeline_process_restarts",
            "pipeline processes replaced after a timeout or a crash",
            registry=self.registry,
        ).set_function(lambda: pool.restarts)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
