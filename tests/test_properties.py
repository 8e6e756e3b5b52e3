"""Properties on random input: offsets are exact, shift with a prefix, and runs are deterministic."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlp

VOCAB = [
    "denies",
    "chest pain",
    "HTN",
    "metformin 500 mg PO BID",
    "mother had MI at 52",
    "no",
    "fever",
    "history of",
    "DM2",
    "SOB",
    "possible pneumonia",
    ".",
    ",",
    "\n",
    "Allergies:",
    "PCN (hives)",
    "FHx:",
    "afib",
    "x3d",
    "s/p",
    "10mg",
    "é",
    "ü",
    "👍",
    "—",
    "\t",
]
notes = (
    st.lists(st.one_of(st.sampled_from(VOCAB), st.text(min_size=1, max_size=12)), min_size=1, max_size=40)
    .map(" ".join)
    .filter(lambda s: s.strip() and "\x00" not in s and not any(0xD800 <= ord(c) <= 0xDFFF for c in s))
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(text=notes)
def test_offsets_are_exact(pipe, text: str) -> None:
    record = pipe.annotate(text)
    for m in record.mentions:
        assert text[m.start : m.end] == m.text
        for name, attr in m.attributes.items():
            if name == "allergy":  # what kind of entry, and where its cue is ("allergic to")
                assert attr["cue_start"] is None or 0 <= attr["cue_start"] < attr["cue_end"] <= len(text)
                continue
            assert text[attr["start"] : attr["end"]] == attr["text"]
        for cue in m.cues:
            if cue.start is not None:
                assert text[cue.start : cue.end] == cue.text


@pytest.fixture(scope="module")
def rules_pipe() -> nlp.Pipeline:
    return nlp.load("lexicon")


@SETTINGS
@given(text=notes, k=st.integers(min_value=1, max_value=5))
def test_prefix_spaces_shift_offsets(rules_pipe, text: str, k: int) -> None:
    # the rule pipeline's offset bookkeeping; a statistical model may read a leading space as context
    a = rules_pipe.annotate(text)
    b = rules_pipe.annotate(" " * k + text)
    assert [(m.start + k, m.end + k, m.label, m.assertion) for m in a.mentions] == [
        (m.start, m.end, m.label, m.assertion) for m in b.mentions
    ]


@SETTINGS
@given(text=notes)
def test_deterministic(pipe, text: str) -> None:
    assert pipe.annotate(text, note_id="n") == pipe.annotate(text, note_id="n")
