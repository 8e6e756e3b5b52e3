"""``notes2fhir`` command line: annotate notes, measure speed."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nlp.errors import Notes2FhirError

SAMPLES = Path(__file__).resolve().parent.parent / "corpora" / "samples"


def _print_table(rows: list[list[Any]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, ["-" * w for w in widths], *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())


def cmd_annotate(args: argparse.Namespace) -> int:
    from nlp import batch
    from nlp.pipeline import load

    pipe = load(args.pipeline, max_chars=args.max_chars)
    rows: list[list[Any]] = []

    def table_row(record: Any) -> None:
        if record.error is not None:
            rows.append([record.note_id, "-", "-", "-", "-", "-", "-", record.error.code])
            return
        labels = [m.label for m in record.mentions]
        rows.append(
            [
                record.note_id,
                len(record.sections),
                labels.count("PROBLEM"),
                labels.count("DRUG") + labels.count("DRUG_CLASS"),
                sum(m.assertion == "absent" for m in record.mentions),
                sum(m.subject == "family" for m in record.mentions),
                len(record.relations),
                "ok",
            ]
        )

    out_path = Path(args.output)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    with tmp.open("w", encoding="utf-8") as out:
        summary = batch.run(
            pipe,
            args.paths,
            out,
            fmt=args.format,
            workers=args.workers,
            progress=not args.quiet,
            on_record=table_row if args.table else None,
        )
    tmp.replace(out_path)
    if args.table:
        _print_table(
            rows, ["note", "sections", "problems", "drugs", "negated", "family", "relations", "status"]
        )
        print()
    print(
        f"notes: {summary.notes}  errors: {summary.errors}  words: {summary.words}  "
        f"time: {summary.seconds:.2f}s  notes/s: {summary.notes_per_second:.1f}  → {out_path}"
    )
    print(
        "mentions by label:     "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary.mentions_by_label.items()))
    )
    print(
        "mentions by assertion: "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary.mentions_by_assertion.items()))
    )
    if summary.errors:
        print(
            "errors by code:        "
            + ", ".join(f"{k} {v}" for k, v in sorted(summary.errors_by_code.items()))
        )
    return 1 if summary.notes and summary.errors == summary.notes else 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Cold and warm load time, and words/s against a tokenizer-only baseline in the same run."""
    from nlp import batch, terminology
    from nlp.pipeline import load

    texts = [s.text for s in batch.read_notes(args.paths) if s.text is not None]
    words = sum(len(t.split()) for t in texts) * args.repeat
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        pipe = load(args.pipeline, cache_dir=cache).warm_up()
        cold = time.perf_counter() - t0
        terminology.forget()  # the next load reads the disk cache
        t0 = time.perf_counter()
        pipe = load(args.pipeline, cache_dir=cache).warm_up()
        warm = time.perf_counter() - t0
    for text in texts[:2]:
        pipe.annotate(text)  # first-call effects (lazy regex/matcher set-up) stay out of the timing
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        for text in texts:
            pipe.nlp.make_doc(text)
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        for text in texts:
            pipe.annotate(text)
    full = time.perf_counter() - t0
    result = {
        "pipeline": pipe.id,
        "notes": len(texts) * args.repeat,
        "words": words,
        "load_cold_s": round(cold, 2),
        "load_warm_s": round(warm, 2),
        "pipeline_words_per_s": round(words / full),
        "tokenizer_words_per_s": round(words / base),
        "pipeline_time_vs_tokenizer": round(full / base, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from nlp.pipeline import DEFAULT_MAX_CHARS, PIPELINES, VERSION

    parser = argparse.ArgumentParser(prog="notes2fhir", description="Clinical notes in, FHIR R4 records out.")
    parser.add_argument("--version", action="version", version=f"notes2fhir {VERSION}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    ann = sub.add_parser("annotate", help="annotate .txt files, directories, JSONL or CSV into NDJSON")
    ann.add_argument("paths", nargs="+", help=".txt files, directories of .txt, .jsonl or .csv (id,text)")
    ann.add_argument("-o", "--output", required=True, help="output NDJSON file (one document per input note)")
    ann.add_argument(
        "--format", choices=["fhir", "record"], default="fhir", help="FHIR Bundles or NoteRecords"
    )
    ann.add_argument("--pipeline", choices=sorted(PIPELINES), default="default")
    ann.add_argument(
        "--max-chars", type=int, default=DEFAULT_MAX_CHARS, help="per-note limit (never truncated)"
    )
    ann.add_argument("--workers", type=int, default=1, help="worker processes")
    ann.add_argument("--table", action="store_true", help="print a per-note summary table")
    ann.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ann.set_defaults(func=cmd_annotate)

    bench = sub.add_parser("bench", help="load time and words/s (vs. the tokenizer alone, same run)")
    bench.add_argument("paths", nargs="*", default=[str(SAMPLES)])
    bench.add_argument("--pipeline", choices=sorted(PIPELINES), default="default")
    bench.add_argument("--repeat", type=int, default=20)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except Notes2FhirError as exc:
        print(f"notes2fhir: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
