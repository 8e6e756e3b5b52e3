"""Scoring the pipeline against annotated corpora (the same code path the library uses)."""
