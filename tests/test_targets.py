"""Targets mode: the caller's spans get assertion, section and codes; nothing else is added."""

from tests.conftest import find


def test_targets_get_assertion_section_codes(pipe) -> None:
    text = "ROS: Denies chest pain.\nPMH: HTN.\nFHx: mother with breast cancer."
    targets = [
        (text.index("chest pain"), text.index("chest pain") + 10, "PROBLEM"),
        (text.index("HTN"), text.index("HTN") + 3, "PROBLEM"),
        (text.index("breast cancer"), text.index("breast cancer") + 13, "DIAGNOSIS"),
    ]
    record = pipe.annotate(text, targets=targets)
    assert [(m.start, m.end, m.label) for m in record.mentions] == targets
    cp, htn, bc = record.mentions
    assert (cp.assertion, cp.section) == ("absent", "review_of_systems")
    assert (htn.assertion, htn.section, htn.codes[0].code) == ("present", "past_medical_history", "I10")
    assert (bc.subject, bc.relationship, bc.label) == ("family", "MTH", "DIAGNOSIS")


def test_targets_inside_a_token_keep_their_offsets(pipe) -> None:
    text = "No chestpain today."
    record = pipe.annotate(text, targets=[(3, 8, "PROBLEM")])
    (m,) = record.mentions
    assert (m.start, m.end, m.text, m.assertion) == (3, 8, "chest", "absent")


def test_empty_targets_give_no_mentions(pipe) -> None:
    assert pipe.annotate("Has HTN and fever.", targets=[]).mentions == ()
    assert find(pipe.annotate("Has HTN and fever."), "fever")
