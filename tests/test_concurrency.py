"""One pipeline called from several threads (the HTTP service's worker threads) gives the records a
single thread gives: spaCy components keep per-call state, so calls are serialised."""

import sys
from concurrent.futures import ThreadPoolExecutor

# every note defines abbreviations, so scispaCy's detector adds and removes matcher rules for each
NOTES = [
    " ".join(
        f"Visit {i}.{k}: idiopathic pulmonary fibrosis (IPF), chronic kidney disease (CKD), "
        f"obstructive sleep apnea (OSA) and peripheral arterial disease (PAD {k}). IPF stable; CKD worse; "
        f"OSA on CPAP; PAD with claudication. Started lisinopril 10 mg daily; developed cough on lisinopril."
        for k in range(6)
    )
    for i in range(48)
]


def test_threads_give_the_sequential_records(pipe) -> None:
    expected = [pipe.annotate(text, note_id=str(i)) for i, text in enumerate(NOTES)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so an unguarded component would be caught
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            got = list(pool.map(lambda item: pipe.annotate(item[1], note_id=str(item[0])), enumerate(NOTES)))
    finally:
        sys.setswitchinterval(interval)
    assert got == expected
