"""``notes2fhir`` command line: annotate notes, measure speed, evaluate on corpora, train models."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nlp.errors import ConfigError, InputError, Notes2FhirError

SAMPLES = Path(__file__).resolve().parent.parent / "corpora" / "samples"


def _print_table(rows: list[list[Any]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, ["-" * w for w in widths], *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())


def cmd_annotate(args: argparse.Namespace) -> int:
    """Annotate notes into a sharded, resumable output directory (see :mod:`nlp.batch`)."""
    from nlp import batch

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

    try:
        manifest = batch.run_batch(
            args.paths,
            args.out_dir,
            pipeline=args.pipeline,
            fmt=args.format,
            output_format=args.output_format,
            workers=args.workers,
            timeout=args.timeout,
            shard_size=args.shard_size,
            resume=args.resume,
            id_col=args.id_col,
            text_col=args.text_col,
            max_chars=args.max_chars,
            progress=not args.quiet,
            on_record=table_row if args.table else None,
            timestamp=args.timestamp,
        )
    except Notes2FhirError as exc:  # the run could not proceed: exit code 1, as a FAILED run
        print(f"notes2fhir: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 1
    if args.table:
        _print_table(
            rows, ["note", "sections", "problems", "drugs", "negated", "family", "relations", "status"]
        )
        print()
    resumed = f" ({manifest.resumed} resumed)" if manifest.resumed else ""
    print(
        f"notes: {manifest.input}{resumed}  errors: {manifest.failed}  words: {manifest.words}  "
        f"time: {manifest.seconds:.2f}s  notes/s: {manifest.notes_per_second:.1f}  "
        f"status: {manifest.status}  → {args.out_dir}"
    )
    print(
        "mentions by label:     "
        + ", ".join(f"{k} {v}" for k, v in sorted(manifest.mentions_by_label.items()))
    )
    print(
        "mentions by assertion: "
        + ", ".join(f"{k} {v}" for k, v in sorted(manifest.mentions_by_assertion.items()))
    )
    if manifest.failed:
        print(
            "errors by code:        "
            + ", ".join(f"{k} {v}" for k, v in sorted(manifest.errors_by_code.items()))
        )
    if manifest.duplicate_ids:
        print(
            f"repeated note ids:     {manifest.duplicate_ids} (e.g. "
            f"{', '.join(manifest.duplicate_id_examples)}); their FHIR resource ids collide"
        )
    return 1 if manifest.status == "FAILED" else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP service (``service.app``): one uvicorn process answering HTTP and ``--workers``
    pipeline processes behind it; settings travel in the ``NOTES2FHIR_*`` environment (``service.config``)."""
    try:
        import uvicorn
    except ImportError as exc:
        raise ConfigError("the service needs its extra: pip install 'notes2fhir[service]'") from exc
    os.environ["NOTES2FHIR_PIPELINE"] = args.pipeline
    os.environ["NOTES2FHIR_MAX_CHARS"] = str(args.max_chars)
    os.environ["NOTES2FHIR_WORKERS"] = str(args.workers)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level="info" if args.verbose else "warning",
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Load time and words/s, against the tokenizer alone and a baseline pipeline in the same run."""
    from nlp import batch, terminology
    from nlp.pipeline import load

    if args.corpus:
        import corpora

        rows = corpora.load(args.corpus, split=args.split)
        texts = [r["text"] for r in rows.select(range(min(args.limit or len(rows), len(rows))))]
        source = f"{args.corpus}/{args.split}"
    else:
        texts = [s.text for s in batch.read_notes(args.paths) if s.text is not None]
        source = ", ".join(args.paths)
    words = sum(len(t.split()) for t in texts) * args.repeat
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        pipe = load(args.pipeline, cache_dir=cache).warm_up()
        cold = time.perf_counter() - t0
        terminology.forget()  # the next load reads the disk cache
        t0 = time.perf_counter()
        pipe = load(args.pipeline, cache_dir=cache).warm_up()
        warm = time.perf_counter() - t0
    baseline = load(args.baseline).warm_up() if args.baseline else None
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def seconds(run) -> float:
        for text in texts[:2]:
            run(text)  # first-call effects (lazy regex/matcher set-up) stay out of the timing
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            for text in texts:
                run(text)
        return time.perf_counter() - t0

    base = seconds(pipe.nlp.make_doc)
    full = seconds(pipe.annotate)
    result = {
        "pipeline": pipe.id,
        "texts": source,
        "notes": len(texts) * args.repeat,
        "words": words,
        "load_cold_s": round(cold, 2),
        "load_warm_s": round(warm, 2),
        "max_rss_mb": round(rss_mb),
        "pipeline_words_per_s": round(words / full),
        "tokenizer_words_per_s": round(words / base),
        "pipeline_time_vs_tokenizer": round(full / base, 1),
    }
    spent = pipe.component_seconds(texts)
    total = sum(spent.values())
    result["time_share_percent"] = {name: round(100 * t / total, 1) for name, t in spent.items()}
    result["assertion_adds_percent"] = round(
        100 * spent["clinical_context"] / (total - spent["clinical_context"]), 1
    )
    if baseline is not None:
        other = seconds(baseline.annotate)
        result[f"{args.baseline}_words_per_s"] = round(words / other)
        result[f"pipeline_time_vs_{args.baseline}"] = round(full / other, 2)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps(result, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Strict and overlap P/R/F1 of a pipeline on a corpus split; table on stdout, JSON to a file."""
    from nlp.evaluation.ner import evaluate_ner, format_table
    from nlp.pipeline import load

    if args.corpus == "bc5cdr-cid":
        return _evaluate_cid(args)
    args.pipeline = args.pipeline or "default"
    if args.task == "assertion":
        return _evaluate_assertion(args)
    if args.task == "adr":
        return _evaluate_adr(args)
    if args.task == "medication":
        return _evaluate_medication(args)
    if args.task == "risk":
        return _evaluate_risk(args)
    if args.corpus.endswith(".jsonl"):
        raise InputError(
            f"{args.corpus} is a case file: only --task assertion, adr, medication and risk read case files",
            code="unsupported_corpus",
        )
    if args.task == "linking":
        return _evaluate_linking(args)
    pipe = load(args.pipeline).warm_up()
    report = evaluate_ner(
        pipe, args.corpus, args.split, corpus_dir=args.corpus_dir, limit=args.limit, workers=args.workers
    )
    print(
        f"{report['corpus']} / {report['split']} / {report['pipeline']}: {report['documents']} documents, "
        f"{report['words_per_s']} words/s ({report['workers']} worker(s))"
        + ("; partial annotation: recall only" if report["recall_only"] else "")
    )
    _print_table(format_table(report), ["match", "label", "P", "R", "F1", "gold", "predicted"])
    _write_report(args, f"{args.corpus}-{args.split}-{args.pipeline}", report)
    return 0


def _write_report(args: argparse.Namespace, name: str, report: dict[str, Any]) -> None:
    """The report as JSON to ``-o`` or ``out/eval/<name>.json``."""
    output = Path(args.output or Path("out") / "eval" / f"{name}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written {output}")


def _evaluate_assertion(args: argparse.Namespace) -> int:
    from nlp.evaluation.assertion import (
        TABLE_HEADER,
        check_source,
        evaluate_assertion,
        format_table,
        is_case_file,
    )
    from nlp.pipeline import load

    check_source(args.corpus)  # before the pipeline loads
    pipe = load(args.pipeline).warm_up()
    report = evaluate_assertion(pipe, args.corpus, args.split, corpus_dir=args.corpus_dir, limit=args.limit)
    where = report["corpus"] if report["split"] is None else f"{report['corpus']} / {report['split']}"
    print(f"{where} / {report['pipeline']}: {report['documents']} documents, {report['words_per_s']} words/s")
    _print_table(format_table(report), TABLE_HEADER)
    if "accuracy" in report:
        print(
            "accuracy: "
            + ", ".join(f"{k} {v['accuracy']:.3f} ({v['cases']})" for k, v in report["accuracy"].items())
        )
    if "mismatches" in report:
        print(f"mismatches: {len(report['mismatches'])}")
    name = Path(args.corpus).stem if is_case_file(args.corpus) else f"{args.corpus}-{args.split}"
    _write_report(args, f"{name}-assertion", report)
    return 0


def _evaluate_adr(args: argparse.Namespace) -> int:
    from nlp.evaluation.adr import check_corpus, evaluate_adr
    from nlp.evaluation.assertion import TABLE_HEADER, format_table  # the same level/class table
    from nlp.pipeline import load

    check_corpus(args.corpus)  # before the pipeline loads
    pipe = load(args.pipeline).warm_up()
    report = evaluate_adr(pipe, args.corpus, args.split, corpus_dir=args.corpus_dir, limit=args.limit)
    print(
        f"{report['corpus']} / {report['split'] or '-'} / {report['pipeline']}: {report['documents']} "
        f"documents, {report['words_per_s']} words/s"
        + ("" if report["adr_component"] else "; the pipeline has no clinical_adr: no pairs predicted")
    )
    _print_table(format_table(report), TABLE_HEADER)
    name = Path(args.corpus).stem if args.corpus.endswith(".jsonl") else f"{args.corpus}-{args.split}"
    _write_report(args, f"{name}-adr", report)
    return 0


def _evaluate_medication(args: argparse.Namespace) -> int:
    from nlp.evaluation.medication import evaluate_medication_cases, format_table, read_medication_cases
    from nlp.pipeline import load

    read_medication_cases(args.corpus)  # a malformed file fails before the pipeline loads
    pipe = load(args.pipeline).warm_up()
    report = evaluate_medication_cases(pipe, args.corpus, limit=args.limit)
    print(
        f"{report['corpus']} / {report['pipeline']}: {report['documents']} cases, "
        f"{report['words_per_s']} words/s"
    )
    _print_table(format_table(report), ["score", "P", "R", "F1 / accuracy", "gold", "predicted"])
    _write_report(args, f"{Path(args.corpus).stem}-medication", report)
    return 0


def _evaluate_risk(args: argparse.Namespace) -> int:
    from nlp.evaluation.risk import evaluate_risk_cases, format_table, read_risk_cases
    from nlp.pipeline import load

    read_risk_cases(args.corpus)  # a malformed file fails before the pipeline loads
    pipe = load(args.pipeline).warm_up()
    report = evaluate_risk_cases(pipe, args.corpus, limit=args.limit)
    print(f"{report['corpus']} / {report['pipeline']}: {report['documents']} cases")
    _print_table(format_table(report), ["score", "value", "cases"])
    _write_report(args, f"{Path(args.corpus).stem}-risk", report)
    return 0


def _evaluate_cid(args: argparse.Namespace) -> int:
    from nlp.evaluation.cid import CORPUS, evaluate_cid

    report = evaluate_cid(
        args.split,
        pipeline=args.pipeline or "literature",
        corpus_dir=args.corpus_dir,
        limit=args.limit,
        workers=args.workers,
    )
    print(
        f"{CORPUS} / {report['split']} / {report['pipeline']}: {report['documents']} abstracts, "
        f"{report['abstracts_per_s']} abstracts/s ({report['workers']} worker(s))"
    )
    rows = [
        [name, f"{r['P']:.3f}", f"{r['R']:.3f}", f"{r['F1']:.3f}", r["gold"], r["predicted"]]
        for name, r in (
            ("abstract-level pairs", report["cid"]),
            ("sentence relations", report["sentence_relations_only"]),
        )
    ]
    _print_table(rows, ["CID pairs", "P", "R", "F1", "gold", "predicted"])
    _write_report(args, f"{CORPUS}-{report['split']}", report)
    return 0


def cmd_literature(args: argparse.Namespace) -> int:
    """Summarise drug -> adverse-reaction evidence in abstracts into a report folder."""
    from nlp.literature import read_abstracts, summarize, write_report

    # abstracts are small: reading them all first gives the progress bar its total
    items = list(read_abstracts(args.inputs, fmt=args.input_format))
    summary = summarize(
        items, pipeline=args.pipeline, workers=args.workers, progress=not args.quiet, total=len(items)
    )
    written = write_report(summary, Path(args.output))
    reported = sum(p.abstracts > 0 for p in summary.pairs)
    print(
        f"abstracts: {summary.abstracts}  unreadable or failed: {len(summary.failed)}  "
        f"drug-reaction pairs: {len(summary.pairs)} ({reported} reported)  time: {summary.seconds:.1f}s"
    )
    for pair in summary.pairs[:10]:
        print(f"  {pair.abstracts:4d}  {pair.drug} -> {pair.reaction}")
    print("written " + ", ".join(str(p) for p in written.values()))
    return 0 if summary.abstracts else 1


def _evaluate_linking(args: argparse.Namespace) -> int:
    from nlp.evaluation.linking import evaluate_linking
    from nlp.pipeline import DEFAULT_CACHE_DIR

    report = evaluate_linking(
        args.corpus, args.split, corpus_dir=args.corpus_dir, cache_dir=DEFAULT_CACHE_DIR
    )
    report.pop("sweep", None)
    print(json.dumps(report, indent=1))
    _write_report(args, f"{args.corpus}-{args.split}-linking", report)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train an NER model from the corpora's train splits (best epoch chosen on validation)."""
    out = Path(args.out)
    options: dict[str, Any] = {"corpora": tuple(args.corpora.split(","))}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    if args.seed is not None:
        options["seed"] = args.seed
    if args.arch == "cnn":
        from nlp.train.cnn import train_cnn

        if args.exhaustive:
            raise SystemExit("--exhaustive is for --arch transformer")
        options["corpora_names"] = options.pop("corpora")
        if args.final_epochs is not None:
            options.update(final_epochs=args.final_epochs, mention_precision=args.mention_precision)
        report = train_cnn(out, **options)
    else:
        from nlp.train.transformer import train_transformer

        report = train_transformer(out, exhaustive=args.exhaustive, final_epochs=args.final_epochs, **options)
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    import corpora
    from nlp.literature.readers import FORMATS as LITERATURE_FORMATS
    from nlp.pipeline import DEFAULT_MAX_CHARS, PIPELINES, VERSION

    parser = argparse.ArgumentParser(prog="notes2fhir", description="Clinical notes in, FHIR R4 records out.")
    parser.add_argument("--version", action="version", version=f"notes2fhir {VERSION}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    ann = sub.add_parser(
        "annotate",
        help="annotate .txt files, directories, JSONL, CSV or Parquet into sharded NDJSON or Parquet",
    )
    ann.add_argument(
        "paths", nargs="+", help=".txt files, directories of .txt, .jsonl, .csv or .parquet (id, text)"
    )
    ann.add_argument(
        "-o",
        "--out-dir",
        required=True,
        help="output directory: part-*.ndjson|parquet, errors.ndjson, manifest.json, a resume ledger",
    )
    ann.add_argument(
        "--format", choices=["fhir", "record"], default="fhir", help="FHIR Bundles or NoteRecords"
    )
    ann.add_argument("--output-format", choices=["ndjson", "parquet"], default="ndjson")
    ann.add_argument("--pipeline", choices=sorted(PIPELINES), default="default")
    ann.add_argument(
        "--workers", type=int, default=1, help="worker processes (0: in this process, no timeout)"
    )
    ann.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per note before its worker is killed"
    )
    ann.add_argument("--shard-size", type=int, default=1000, help="notes per output file")
    ann.add_argument(
        "--resume", action="store_true", help="finish the run in OUT_DIR, skipping committed shards"
    )
    ann.add_argument("--id-col", default="id", help="id field/column of JSONL, CSV and Parquet inputs")
    ann.add_argument("--text-col", default="text", help="text field/column of JSONL, CSV and Parquet inputs")
    ann.add_argument(
        "--timestamp",
        help="Bundle.timestamp of every Bundle (ISO 8601; default: when the run started); "
        "a fixed value makes separate runs byte-identical",
    )
    ann.add_argument(
        "--max-chars", type=int, default=DEFAULT_MAX_CHARS, help="per-note limit (never truncated)"
    )
    ann.add_argument("--table", action="store_true", help="print a per-note summary table")
    ann.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ann.set_defaults(func=cmd_annotate)

    serve = sub.add_parser("serve", help="the HTTP service (FastAPI + uvicorn; pip install '.[service]')")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="pipeline processes behind one queue, each loading the pipeline once; a note past the "
        "deadline is killed with its process (0: the pipeline runs in the server process)",
    )
    serve.add_argument("--pipeline", choices=sorted(PIPELINES), default="default")
    serve.add_argument(
        "--max-chars", type=int, default=DEFAULT_MAX_CHARS, help="per-note limit (never truncated)"
    )
    serve.set_defaults(func=cmd_serve)
    bench = sub.add_parser("bench", help="load time and words/s (vs. the tokenizer alone, same run)")
    bench.add_argument("paths", nargs="*", default=[str(SAMPLES)])
    bench.add_argument("--pipeline", choices=sorted(PIPELINES), default="default")
    bench.add_argument("--baseline", choices=sorted(PIPELINES), help="also time this pipeline (same run)")
    bench.add_argument("--corpus", help="take the notes from a corpus instead of paths (e.g. mtsamples)")
    bench.add_argument("--split", default="test", help="corpus split (with --corpus)")
    bench.add_argument("--limit", type=int, help="first N notes of the corpus split")
    bench.add_argument("--repeat", type=int, default=20)
    bench.set_defaults(func=cmd_bench)

    ev = sub.add_parser("evaluate", help="P/R/F1 of a pipeline on an annotated corpus split")
    ev.add_argument(
        "corpus",
        help="corpus name: "
        + ", ".join(sorted(corpora.REGISTRY))
        + "; with --task assertion: bioscope, chia, phee or a .jsonl case file"
        + "; with --task adr: ade_corpus_v2, phee, tac2017_adr or a .jsonl case file"
        + "; with --task medication or risk: a .jsonl case file"
        + "; bc5cdr-cid: chemical-induced disease pairs (literature pipeline)",
    )
    ev.add_argument("--split", default="test")
    ev.add_argument(
        "--task",
        choices=["ner", "linking", "assertion", "adr", "medication", "risk"],
        default="ner",
        help="mentions (P/R/F1), codes of gold mentions, assertions of gold spans, "
        "drug -> adverse reaction pairs, medications with attributes, status and allergies, "
        "or the risk-factor profile",
    )
    ev.add_argument(
        "--pipeline", choices=sorted(PIPELINES), help="default: 'default' ('literature' for bc5cdr-cid)"
    )
    ev.add_argument(
        "--corpus-dir", help=f"the corpus folder (default: ${corpora.ENV_VAR}/<name> or ../shared/corpora)"
    )
    ev.add_argument("--limit", type=int, help="score only the first N documents")
    ev.add_argument("--workers", type=int, default=1, help="worker processes")
    ev.add_argument(
        "-o",
        "--output",
        help="JSON report (default out/eval/<corpus>-<split>-<pipeline|linking|assertion|adr>.json; "
        "a case file: out/eval/<file stem>-<task>.json)",
    )
    ev.set_defaults(func=cmd_evaluate)

    lit = sub.add_parser("literature", help="drug -> adverse-reaction evidence in PubMed abstracts")
    lit_sub = lit.add_subparsers(dest="what", required=True)
    summ = lit_sub.add_parser(
        "summarize", help="read abstracts, write report.html, pairs.csv and summary.json to a folder"
    )
    summ.add_argument(
        "inputs", nargs="+", type=Path, help="PubMed XML, MEDLINE .nbib/.txt, PubTator, JSONL or CSV"
    )
    summ.add_argument("-o", "--output", required=True, help="report folder")
    summ.add_argument(
        "--input-format",
        choices=LITERATURE_FORMATS,
        help="default: by suffix, sniffing the first line",
    )
    summ.add_argument("--pipeline", choices=sorted(PIPELINES), default="literature")
    summ.add_argument("--workers", type=int, default=1, help="worker processes (each loads the pipeline)")
    summ.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    summ.set_defaults(func=cmd_literature)

    train = sub.add_parser("train", help="train a model (see models/README.md)")
    train_sub = train.add_subparsers(dest="what", required=True)
    ner = train_sub.add_parser("ner", help="NER from the union of the corpora's train splits")
    ner.add_argument("--arch", choices=["cnn", "transformer"], default="cnn")
    ner.add_argument("--out", required=True, help="output model folder")
    ner.add_argument("--corpora", default="bc5cdr,ncbi_disease,chia", help="comma-separated corpus names")
    ner.add_argument("--epochs", type=int, help="maximum epochs (default: cnn 20, transformer 4)")
    ner.add_argument("--seed", type=int, help="random seed (default: cnn 13, transformer 0)")
    ner.add_argument(
        "--final-epochs",
        type=int,
        help="train on train + validation for N epochs (N from a selection run) and keep the last",
    )
    ner.add_argument(
        "--mention-precision", type=float, help="cnn final run: the selection run's validation precision"
    )
    ner.add_argument(
        "--exhaustive",
        action="store_true",
        help="transformer: read every corpus as annotating all labels (a model of its own convention, "
        "e.g. ADE-Corpus-V2's drugs and reactions of adverse events)",
    )
    ner.set_defaults(func=cmd_train)
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
