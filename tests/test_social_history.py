"""Social history: note text -> smoking, alcohol and drug-use status, evidence and details."""

import statistics
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp import resources
from nlp.components import social_history
from nlp.components.social_history import read_social_history
from nlp.errors import InputError, ResourceError

SMOKING_DETAILS = {"packs_per_day", "years", "pack_years", "quit_year", "quit_text", "product"}
ALCOHOL_DETAILS = {"drinks_per_week", "amount_text"}
U = "unknown"

# text, smoking, alcohol, drugs, details that must hold (any topic's keys)
CASES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    # smoking: current
    ("Smokes 1 ppd.", "current", U, U, {"packs_per_day": 1.0, "product": "cigarettes"}),
    ("Current smoker.", "current", U, U, {}),
    ("Patient is smoking 1/2 ppd.", "current", U, U, {"packs_per_day": 0.5}),
    ("Vapes nicotine daily.", "current", U, U, {"product": "vape"}),
    ("Tobacco: Yes", "current", U, U, {}),
    ("Active smoker, 40 pack-year history.", "current", U, U, {"pack_years": 40.0}),
    ("Cigarettes: 10/day", "current", U, U, {"packs_per_day": 0.5, "product": "cigarettes"}),
    ("Smoking cessation counseling provided.", "current", U, U, {}),
    ("SH: 1.5 ppd x 20 yrs", "current", U, U, {"packs_per_day": 1.5, "years": 20.0, "pack_years": 30.0}),
    (
        "She does occasionally smoke and has been trying to quit recently. She is currently smoking "
        "about a pack a day.",
        "current",
        U,
        U,
        {"packs_per_day": 1.0, "quit_text": None},
    ),
    ("He smokes one-and-one-half-packs of cigarettes per day.", "current", U, U, {"packs_per_day": 1.5}),
    ("Smokes a pack and a half a day.", "current", U, U, {"packs_per_day": 1.5}),
    ("Smokes 2 cigars a day.", "current", U, U, {"product": "cigars", "packs_per_day": None}),
    ("Chews tobacco daily.", "current", U, U, {"product": "chewing tobacco"}),
    ("TOBACCO: CURRENT EVERY DAY SMOKER", "current", U, U, {}),
    ("Former smoker, now vapes.", "current", U, U, {"product": "vape"}),
    ("Smoker. Quit for 2 months but restarted.", "current", U, U, {}),
    ("Pt counseled on smoking cessation.", "current", U, U, {}),
    ("Smokes, 30 PYH.", "current", U, U, {"pack_years": 30.0}),
    # smoking: former
    ("Former smoker, quit 2019.", "former", U, U, {"quit_year": 2019, "quit_text": "2019"}),
    ("Ex-smoker.", "former", U, U, {}),
    ("Remote tobacco use.", "former", U, U, {}),
    ("Quit smoking 10 years ago.", "former", U, U, {"quit_text": "10 years ago", "quit_year": None}),
    ("Tobacco: Former", "former", U, U, {}),
    ("Stopped smoking in 2015.", "former", U, U, {"quit_year": 2015}),
    ("Smoked for 30 years, quit in 2019.", "former", U, U, {"years": 30.0, "quit_year": 2019}),
    ("She used to be a smoker, not anymore.", "former", U, U, {}),
    ("The patient does not smoke. She quit 25 years ago.", "former", U, U, {"quit_text": "25 years ago"}),
    (
        "She denies tobacco at this time though she was a previous smoker, stopped four years ago, and she "
        "denies alcohol use.",
        "former",
        "no",
        U,
        {"quit_text": "four years ago"},
    ),
    (
        "Former smoker (1 ppd x 20 yrs), quit 2010.",
        "former",
        U,
        U,
        {"packs_per_day": 1.0, "years": 20.0, "pack_years": 20.0, "quit_year": 2010},
    ),
    ("He has a history of tobacco use, which he quit at the age of 37.", "former", U, U, {}),
    ("tob: 40 pk-yr hx", "former", U, U, {"pack_years": 40.0}),
    (
        "Smoking status: Former Smoker. Quit date: 01/15/2019. Smokeless tobacco: Never Used.",
        "former",
        U,
        U,
        {"quit_year": 2019},
    ),
    (
        "A 76-year-old who used to smoke a pack a day and quit in 1985.",
        "former",
        U,
        U,
        {"packs_per_day": 1.0, "quit_year": 1985, "years": None},
    ),
    ("Former smoker. Denies tobacco use.", "former", U, U, {}),
    # smoking: never
    ("Never smoker.", "never", U, U, {"product": None}),
    ("Non-smoker.", "never", U, U, {}),
    ("Denies tobacco.", "never", U, U, {}),
    ("Tobacco: Never", "never", U, U, {}),
    ("No tobacco use.", "never", U, U, {}),
    ("Never used tobacco.", "never", U, U, {}),
    ("He is a non-cigarette smoker.", "never", U, U, {}),
    ("The patient is a life long nonsmoker.", "never", U, U, {}),
    ("Does not use tobacco.", "never", U, U, {}),
    # alcohol: yes
    ("Drinks socially.", U, "yes", U, {"amount_text": "socially", "drinks_per_week": None}),
    ("Occasional EtOH.", U, "yes", U, {}),
    ("Drinks 2 beers/night.", U, "yes", U, {"drinks_per_week": 14.0, "amount_text": "2 beers/night"}),
    ("EtOH: yes", U, "yes", U, {}),
    ("Drinks wine on weekends.", U, "yes", U, {"drinks_per_week": None}),
    ("He drinks a 6-pack daily.", U, "yes", U, {"drinks_per_week": 42.0, "packs_per_day": None}),
    ("Drinks 1 pint vodka/day.", U, "yes", U, {"drinks_per_week": None, "amount_text": "1 pint vodka/day"}),
    (
        "Has a glass of wine on weekends.",
        U,
        "yes",
        U,
        {"drinks_per_week": None, "amount_text": "a glass of wine on weekends"},
    ),
    ("She drinks 2 to 3 glasses of wine per week.", U, "yes", U, {"drinks_per_week": 3.0}),
    ("He drinks one beer a day.", U, "yes", U, {"drinks_per_week": 7.0}),
    ("ETOH: 2-3 drinks/day", U, "yes", U, {"drinks_per_week": 21.0}),
    ("She only drinks socially one to two drinks a month.", U, "yes", U, {"drinks_per_week": 0.46}),
    ("ETOH ABUSE.", U, "yes", U, {}),
    ("History of alcohol abuse.", U, "yes", U, {}),
    # alcohol: no
    ("Denies EtOH.", U, "no", U, {"amount_text": None}),
    ("Does not drink.", U, "no", U, {}),
    ("No alcohol.", U, "no", U, {}),
    ("Sober since 2015.", U, "no", U, {}),
    ("Former heavy drinker, abstinent x 5 yrs.", U, "no", U, {"drinks_per_week": None}),
    ("Quit drinking in 2010.", U, "no", U, {}),
    ("EtOH: none", U, "no", U, {}),
    ("Remote history of alcohol abuse.", U, "no", U, {}),
    ("She is a nonsmoker and nondrinker.", "never", "no", U, {}),
    # drugs: yes
    ("Marijuana daily.", U, U, "yes", {"substances": ["marijuana"]}),
    ("Uses cocaine.", U, U, "yes", {"substances": ["cocaine"]}),
    ("IVDU.", U, U, "yes", {"substances": ["injection drugs"]}),
    ("IVDA", U, U, "yes", {"substances": ["injection drugs"]}),
    ("+ THC", U, U, "yes", {"substances": ["marijuana"]}),
    ("Meth use.", U, U, "yes", {"substances": ["methamphetamine"]}),
    ("Smokes marijuana occasionally; denies tobacco.", "never", U, "yes", {"substances": ["marijuana"]}),
    (
        "He admits to having smoked marijuana off and on with friends and drinking beer off and on as well.",
        U,
        "yes",
        "yes",
        {"substances": ["marijuana"]},
    ),
    ("Denies IVDU, smokes MJ daily.", U, U, "yes", {"substances": ["marijuana"]}),
    # drugs: no
    ("Denies illicit drugs.", U, U, "no", {"substances": []}),
    ("No drug use.", U, U, "no", {}),
    ("Denies IVDU.", U, U, "no", {}),
    ("Drugs: none", U, U, "no", {}),
    ("No recreational drugs.", U, U, "no", {}),
    ("Former IVDU, clean 10 yrs.", U, U, "no", {"substances": []}),
    # combined negations, templates, telegraphic, capitals
    ("Denies tobacco, EtOH or illicit drugs.", "never", "no", "no", {}),
    (
        "Tobacco: Former, 1 ppd x 30 yrs, quit 2019 | Alcohol: socially | Drugs: denies",
        "former",
        "yes",
        "no",
        {
            "packs_per_day": 1.0,
            "years": 30.0,
            "pack_years": 30.0,
            "quit_year": 2019,
            "amount_text": "socially",
        },
    ),
    ("Social History: Tobacco: Never. Alcohol: Occasional. Drugs: None.", "never", "yes", "no", {}),
    ("SH: +tob, (-) EtOH, (-) drugs", "current", "no", "no", {}),
    ("SOCIAL HISTORY: DENIES TOBACCO, ALCOHOL OR DRUG USE.", "never", "no", "no", {}),
    ("No tobacco, alcohol or IV drug use.", "never", "no", "no", {}),
    ("She does not smoke cigarettes, abuse alcohol, nor use any illicit drugs.", "never", "no", "no", {}),
    (
        "Tobacco: never, Alcohol: 1-2 drinks/week, Drugs: marijuana",
        "never",
        "yes",
        "yes",
        {"drinks_per_week": 2.0, "substances": ["marijuana"]},
    ),
    ("Smoking: 1/2 ppd\nAlcohol: denies\nDrugs: denies", "current", "no", "no", {"packs_per_day": 0.5}),
    ("Uses no tobacco, alcohol, or illicit drugs.", "never", "no", "no", {}),
    (
        "Denies alcohol or drugs. Smokes 2 packs of cigarettes per day.",
        "current",
        "no",
        "no",
        {"packs_per_day": 2.0},
    ),
    (
        "He denies tobacco and illicit drug use and drinks two to three alcoholic beverages a day.",
        "never",
        "yes",
        "no",
        {"drinks_per_week": 21.0},
    ),
    ("EtOH (-), tob (+)", "current", "no", U, {}),
    # not the patient, not a statement of use
    ("Father smokes 1 ppd.", U, U, U, {}),
    ("Mother was an alcoholic.", U, U, U, {}),
    ("Parents do smoke around the house.", U, U, U, {}),
    ("Some minor second-hand tobacco exposure.", U, U, U, {}),
    ("There are smokers at home.", U, U, U, {}),
    ("Lives with mother and grandmother. There is no smoking at home.", U, U, U, {}),
    ("Smoke detectors in the home.", U, U, U, {}),
    ("Ate smoked salmon for dinner.", U, U, U, {}),
    ("Alcohol swab applied to the site.", U, U, U, {}),
    ("Cleans hands with alcohol-based hand rub.", U, U, U, {}),
    ("Alcoholic hepatitis in remission.", U, U, U, {}),
    ("Nonalcoholic fatty liver disease.", U, U, U, {}),
    ("Ice pack applied twice a day.", U, U, U, {}),
    ("Wound packed with gauze; packing changed daily.", U, U, U, {}),
    ("PPD negative.", U, U, U, {}),
    ("No known drug allergies.", U, U, U, {}),
    ("Drug-eluting stent placed in 2019.", U, U, U, {}),
    ("Advised to avoid alcohol while on metronidazole.", U, U, U, {}),
    ("Drinks plenty of water.", U, U, U, {}),
    ("Eating and drinking well.", U, U, U, {}),
    ("Blood alcohol level was 0.", U, U, U, {}),
    ("Alcohol septal ablation in 2015.", U, U, U, {}),
    ("Apply nicotine patch daily.", U, U, U, {}),
    ("Tobacco: unknown", U, U, U, {}),
    ("Follow up with PCP in 2 weeks.", U, U, U, {}),
    ("Wound is clean and dry.", U, U, U, {}),
    (
        "FAMILY HISTORY: Father with alcoholism, mother smoked.\nSOCIAL HISTORY: Denies tobacco.",
        "never",
        U,
        U,
        {},
    ),
    ("Lives with her husband who smokes; she denies tobacco.", "never", U, U, {}),
    ("Lives with wife, smokes 1 ppd.", "current", U, U, {"packs_per_day": 1.0}),
    ("Denies tobacco. Husband drinks heavily.", "never", U, U, {}),
    ("He is a retired liquor store owner.", U, U, U, {}),
    ("We will place a PPD to rule out tuberculosis.", U, U, U, {}),
    ("The skin was prepped with iodine and alcohol in the usual fashion.", U, U, U, {}),
    ("Pledgets soaked in 4% cocaine solution were placed in the nasal cavity.", U, U, U, {}),
    ("Spontaneous echo smoke is seen in the left atrium.", U, U, U, {}),
    ("She drinks two to four cups of coffee per day.", U, U, U, {}),
    ("What kinds of recreational drugs have you tried?", U, U, U, {}),
    ("SHX: ETOH abuse (quit '92), 30 pk-yr cigarettes (quit '92)", "former", "no", U, {"pack_years": 30.0}),
    ("There were possible illicit drugs.", U, U, U, {}),
    # conflicts: the latest statement wins; a general statement covers each product
    ("Smokes 1 ppd. Quit smoking in 2019.", "former", U, U, {"packs_per_day": 1.0, "quit_year": 2019}),
    (
        "He quit smoking cigarettes but still smokes cigars occasionally.",
        "current",
        U,
        U,
        {"product": "cigars"},
    ),
    ("Denies smoking but does use chewing tobacco.", "current", U, U, {"product": "chewing tobacco"}),
    (
        "She still smokes one pack of cigarettes a day. She was counseled to quit.",
        "current",
        U,
        U,
        {"quit_year": None},
    ),
    (
        "She smoked cigarettes socially while in her 20s. She does not smoke now.",
        "former",
        U,
        U,
        {"product": "cigarettes"},
    ),
    (
        "She did smoke in the past up to one to one and a half packs of cigarettes per day for about "
        "10 years, but she quit long time ago.",
        "former",
        U,
        U,
        {"packs_per_day": 1.5, "years": 10.0, "pack_years": 15.0, "quit_text": "long time ago"},
    ),
    (
        "Former smoker who quit 20 years ago after smoking for 25 years at 2 ppd.",
        "former",
        U,
        U,
        {"pack_years": 50.0, "quit_text": "20 years ago"},
    ),
    ("He also quit smoking cigarettes in 1984, after 16 years of smoking.", "former", U, U, {"years": 16.0}),
    ("He smokes one pack per day. He smoked 50 pack years.", "current", U, U, {"pack_years": 50.0}),
    ("The patient still smokes about a third of a pack a day.", "current", U, U, {"packs_per_day": 0.33}),
    ("Smoking Status: Former Smoker\nPacks/day: 1.00\nQuit date: 2015", "former", U, U, {"quit_year": 2015}),
    ("Tobacco use disorder, in remission.", "former", U, U, {}),
    ("The patient is a social drinker and a former smoker.", "former", "yes", U, {"amount_text": "social"}),
    ("He only drinks alcohol socially, no more than 1 drink every few weeks.", U, "yes", U, {}),
    ("Hx of EtOH abuse, sober since 2018.", U, "no", U, {}),
    ("Drinks 3-4 cups of coffee a day. Denies alcohol.", U, "no", U, {}),
    ("He drinks a case of beer every weekend.", U, "yes", U, {"drinks_per_week": None}),
    ("He drinks 3 to 4 alcoholic beverages per day on weekends.", U, "yes", U, {"drinks_per_week": None}),
    (
        "He chews tobacco, about half a can per day, and notes occasional alcohol use.",
        "current",
        "yes",
        U,
        {"drinks_per_week": None, "amount_text": "occasional"},
    ),
    ("Uses marijuana; denies other illicit drugs.", U, U, "yes", {"substances": ["marijuana"]}),
    ("Smokes weed daily.", U, U, "yes", {"substances": ["marijuana"]}),
    ("IVDU in the 1990s, now on methadone.", U, U, "no", {}),
    ("No smoking. Rare alcohol. No drugs.", "never", "yes", "no", {}),
]


def _detail(history: social_history.SocialHistory, key: str) -> Any:
    if key in SMOKING_DETAILS:
        return history.smoking.details[key]
    if key in ALCOHOL_DETAILS:
        return history.alcohol.details[key]
    return history.drugs.details[key]


@pytest.mark.parametrize(("text", "smoking", "alcohol", "drugs", "details"), CASES)
def test_status_and_details(
    text: str, smoking: str, alcohol: str, drugs: str, details: dict[str, Any]
) -> None:
    history = read_social_history(text)
    assert (history.smoking.status, history.alcohol.status, history.drugs.status) == (smoking, alcohol, drugs)
    assert {key: _detail(history, key) for key in details} == details


def test_enough_cases() -> None:
    assert len(CASES) >= 80


@pytest.mark.parametrize(
    ("text", "topic", "evidence"),
    [
        ("Denies tobacco, EtOH or illicit drugs.", "smoking", ["Denies tobacco"]),
        (
            "Tobacco: Former, 1 ppd x 30 yrs, quit 2019",
            "smoking",
            ["Tobacco: Former", "Former, 1 ppd", "quit"],
        ),
        ("Smoked for 30 years, quit in 2019.", "smoking", ["Smoked", "quit"]),
        ("Smoker. Quit for 2 months but restarted.", "smoking", ["Smoker", "restarted"]),
        ("Drugs: denies", "drugs", ["Drugs: denies"]),
        ("EtOH (-)", "alcohol", ["EtOH (-)"]),
        ("Sober since 2015.", "alcohol", ["Sober"]),
    ],
)
def test_evidence(text: str, topic: str, evidence: list[str]) -> None:
    finding = getattr(read_social_history(text), topic)
    assert [e.text for e in finding.evidence] == evidence
    assert all(text[e.start : e.end] == e.text for e in finding.evidence)


def test_unknown_has_no_evidence_and_full_details() -> None:
    history = read_social_history("Chest pain for two days.")
    for finding in (history.smoking, history.alcohol, history.drugs):
        assert finding.status == "unknown"
        assert finding.evidence == ()
    assert set(history.smoking.details) == SMOKING_DETAILS
    assert set(history.alcohol.details) == ALCOHOL_DETAILS
    assert history.drugs.details == {"substances": []}


def test_offsets_hold_inside_a_longer_note() -> None:
    prefix = "HPI: 54M with chest pain x2d.\nPMH: HTN, DM2.\n"
    text = prefix + "SOCIAL HISTORY: Smokes 1 ppd x 30 yrs. Drinks 2 beers/night. Denies IVDU."
    history = read_social_history(text)
    assert (history.smoking.status, history.alcohol.status, history.drugs.status) == ("current", "yes", "no")
    assert history.smoking.details["pack_years"] == 30.0
    for finding in (history.smoking, history.alcohol, history.drugs):
        assert finding.evidence and all(e.start >= len(prefix) for e in finding.evidence)
        assert all(text[e.start : e.end] == e.text for e in finding.evidence)


def test_not_text_is_an_input_error() -> None:
    with pytest.raises(InputError) as raised:
        read_social_history(b"smokes")  # type: ignore[arg-type]
    assert raised.value.code == "invalid_type"


def test_resource_patterns_may_not_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = resources.load("social_history")
    broken = spec.model_copy(
        update={"terms": [spec.terms[0].model_copy(update={"patterns": ["(smokes)"]}), *spec.terms[1:]]}
    )
    monkeypatch.setattr(resources, "load", lambda name: broken)
    with pytest.raises(ResourceError, match="capturing"):
        social_history._Rules.from_resources()


VOCAB = [
    "denies",
    "tobacco",
    "EtOH",
    "(-)",
    "(+)",
    "+",
    "-",
    "quit",
    "2019",
    "former",
    "smoker",
    "1 ppd",
    "x 30 yrs",
    "pk-yr",
    "Tobacco:",
    "Alcohol:",
    "Drugs:",
    "none",
    "never",
    "IVDU",
    "marijuana",
    "drinks",
    "2 beers/night",
    "a 6-pack",
    "daily",
    "mother",
    "smoke detector",
    "alcohol swab",
    "history of",
    "restarted",
    "sober",
    "one and a half",
    "1/2",
    "|",
    ",",
    ".",
    ";",
    "\n",
    "FAMILY HISTORY:",
    "½",
    "é",
    "👍",
]
notes = st.lists(st.one_of(st.sampled_from(VOCAB), st.text(max_size=8)), max_size=30).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(text=notes)
def test_never_raises_and_offsets_are_exact(text: str) -> None:
    history = read_social_history(text)
    allowed = {
        "smoking": {"current", "former", "never", U},
        "alcohol": {"yes", "no", U},
        "drugs": {"yes", "no", U},
    }
    for topic, statuses in allowed.items():
        finding = getattr(history, topic)
        assert finding.status in statuses
        assert (finding.status == U) == (not finding.evidence)
        for e in finding.evidence:
            assert 0 <= e.start < e.end <= len(text)
            assert text[e.start : e.end] == e.text
    assert set(history.smoking.details) == SMOKING_DETAILS
    assert set(history.alcohol.details) == ALCOHOL_DETAILS


def test_ten_thousand_characters_read_quickly() -> None:
    """Compiled rules: a 10k-character note takes milliseconds (a loose bound, for shared CPUs)."""
    paragraph = (
        "HPI: 67 year old man with 3 days of productive cough, fever to 101.2 and pleuritic chest pain. "
        "He received ceftriaxone 1 g IV and azithromycin 500 mg PO in the ED. Denies hemoptysis. "
        "PMH: COPD, HTN, DM2 on metformin 1000 mg BID. Allergies: NKDA. "
        "Exam: crackles at the right base, no edema. Plan: continue antibiotics, nebs q4h prn. "
    )
    note = (paragraph * (10_000 // len(paragraph) + 1))[:9_800] + (
        " SOCIAL HISTORY: Former smoker, 1 ppd x 30 yrs, quit 2019. Drinks 2 beers/night. Denies IVDU."
    )
    read_social_history(note)
    timings = []
    for _ in range(15):
        began = time.perf_counter()
        history = read_social_history(note)
        timings.append(time.perf_counter() - began)
    assert history.smoking.status == "former" and history.alcohol.status == "yes"
    assert statistics.median(timings) < 0.02
