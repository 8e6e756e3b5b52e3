"""How long ``notes2fhir literature summarize`` takes on N real abstracts (issue target: 1,000 in
two minutes on 2 cores).

``python -m nlp.literature.benchmark [--abstracts 1000] [--workers 2] [--output FILE]`` takes the first
N BC5CDR abstracts (test, then validation, then train: real PubMed titles and abstracts), writes them
to a JSONL file and times the whole command path: reading, the literature pipeline and the pair
model in ``--workers`` processes (their start-up and model loads included), aggregation and the
report files. Because these machines are noisy, the same run also times spaCy's tokenizer alone over
the same texts in this process, and reports the ratio.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import corpora
from nlp.literature import Abstract, read_abstracts, summarize, write_report
from nlp.machine import machine_info

log = logging.getLogger(__name__)
SPLITS = ("test", "validation", "train")


def bc5cdr_jsonl(path: Path, count: int, corpus_dir: str | None = None) -> int:
    """Write the first ``count`` BC5CDR abstracts (test, validation, train) as JSONL; returns words."""
    words = 0
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for split in SPLITS:
            for row in corpora.load("bc5cdr", split=split, corpus_dir=corpus_dir):
                if written == count:
                    return words
                title_chars = json.loads(row["meta"])["title_chars"]
                title, abstract = row["text"][:title_chars], row["text"][title_chars + 1 :]
                out.write(json.dumps({"pmid": row["id"], "title": title, "abstract": abstract}) + "\n")
                words += len(row["text"].split())
                written += 1
    return words


def run(count: int, workers: int, corpus_dir: str | None = None) -> dict[str, Any]:
    """Time the summary of ``count`` abstracts with ``workers`` processes."""
    import spacy

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "abstracts.jsonl"
        words = bc5cdr_jsonl(source, count, corpus_dir)
        started = time.perf_counter()
        items = list(read_abstracts([source]))
        summary = summarize(items, workers=workers, total=len(items))
        write_report(summary, Path(tmp) / "report")
        seconds = time.perf_counter() - started
        texts = [a.text for a in items if isinstance(a, Abstract)]
        tokenizer = spacy.blank("en")
        t0 = time.perf_counter()
        for text in texts:
            tokenizer.make_doc(text)
        tokenizer_seconds = time.perf_counter() - t0
    return {
        "abstracts": summary.abstracts,
        "failed": len(summary.failed),
        "words": words,
        "workers": workers,
        "seconds": round(seconds, 1),
        "abstracts_per_s": round(summary.abstracts / seconds, 2),
        "target_seconds_per_1000": 120,
        "seconds_per_1000": round(seconds * 1000 / max(1, summary.abstracts), 1),
        "pairs": len(summary.pairs),
        "reported_pairs": sum(p.abstracts > 0 for p in summary.pairs),
        "tokenizer_seconds": round(tokenizer_seconds, 2),
        "time_vs_tokenizer": round(seconds / tokenizer_seconds, 1) if tokenizer_seconds else None,
        "pipeline": summary.pipeline,
        "source": f"BC5CDR abstracts ({', '.join(SPLITS)} in order), first {count}",
        "machine": machine_info(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.literature.benchmark", description=__doc__)
    parser.add_argument("--abstracts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--corpus-dir", help="the BC5CDR folder (default: ../shared/corpora/bc5cdr)")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    report = run(args.abstracts, args.workers, args.corpus_dir)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
