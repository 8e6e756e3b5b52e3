"""Bad input gets a clear coded error, loses nothing else, and never echoes the note."""

import pytest

from nlp.errors import InputError

SECRET = "Jane Secretname"

BAD = [
    ("", "empty_text"),
    ("   \n\t ", "empty_text"),
    ("x" * 100_001, "text_too_long"),
    (f"{SECRET} has HTN\x00", "nul_byte"),
    (f"{SECRET} has HTN \ud800", "lone_surrogate"),
    (None, "invalid_type"),
    (b"bytes are not text", "invalid_type"),
]


@pytest.mark.parametrize(("text", "code"), BAD)
def test_annotate_raises_coded_error(pipe, text, code: str) -> None:
    with pytest.raises(InputError) as info:
        pipe.annotate(text)
    assert info.value.code == code
    assert SECRET not in str(info.value)


def test_batch_isolates_bad_notes(pipe) -> None:
    notes = [("a", "Has HTN."), *((f"bad{i}", t) for i, (t, _) in enumerate(BAD)), ("z", "Denies fever.")]
    records = list(pipe.annotate_many(notes))
    assert [r.note_id for r in records] == [n for n, _ in notes]
    assert records[0].ok and records[-1].ok
    assert [r.error.code for r in records[1:-1]] == [code for _, code in BAD]
    for r in records[1:-1]:
        assert SECRET not in r.model_dump_json()


def test_limit_is_configurable_and_never_truncates() -> None:
    import nlp

    small = nlp.load(max_chars=20)
    assert small.annotate("Has HTN.").mentions
    with pytest.raises(InputError, match="limit is 20"):
        small.annotate("Has HTN and diabetes and more.")


def test_exactly_at_limit_is_fine(pipe) -> None:
    text = ("Has HTN. " * 20_000)[: pipe.max_chars]
    assert len(pipe.annotate(text).mentions) > 1000


@pytest.mark.parametrize(
    "targets",
    [[(5, 2, "PROBLEM")], [(0, 999, "PROBLEM")], [(0, 3)], [("0", 3, "PROBLEM")], [(0, 3, "")]],
)
def test_invalid_targets(pipe, targets) -> None:
    with pytest.raises(InputError) as info:
        pipe.annotate("Has HTN.", targets=targets)
    assert info.value.code == "invalid_targets"


def test_binary_junk_is_handled(pipe) -> None:
    junk = bytes(range(1, 256)).decode("latin-1") * 20
    record = pipe.annotate(junk)
    for m in record.mentions:
        assert junk[m.start : m.end] == m.text
