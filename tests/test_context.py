"""Assertion and experiencer: sentence → (mention, assertion, subject), and the cue recorded."""

import pytest
import spacy
from medspacy.common.medspacy_matcher import MedspacyMatcher
from medspacy.context import ConTextModifier, ConTextRule

import nlp
from nlp.components.context import _Cue, expand_phrase, split_first_token
from nlp.components.windowed_matching import WindowedMatcher, keep_longest
from tests.conftest import assert_windowing_changes_nothing, find

CASES = [
    # negation
    ("Denies chest pain.", "chest pain", "absent", "patient"),
    ("She denied fever, chills, or night sweats.", "night sweats", "absent", "patient"),
    ("No evidence of pneumothorax.", "pneumothorax", "absent", "patient"),
    ("CT was negative for pulmonary embolism.", "pulmonary embolism", "absent", "patient"),
    ("Without edema.", "edema", "absent", "patient"),
    ("She was ruled out for MI.", "MI", "absent", "patient"),
    ("PE was ruled out.", "PE", "absent", "patient"),
    ("Hematuria: negative", "Hematuria", "absent", "patient"),
    ("No syncope or palpitations.", "palpitations", "absent", "patient"),
    # termination
    ("Denies chest pain but reports dyspnea.", "dyspnea", "present", "patient"),
    ("No fever; has a cough.", "cough", "present", "patient"),
    # pseudo-negation
    ("No change in her edema.", "edema", "present", "patient"),
    # uncertainty
    ("Possible pneumonia.", "pneumonia", "possible", "patient"),
    ("Likely GERD.", "GERD", "possible", "patient"),
    ("Concern for sepsis.", "sepsis", "possible", "patient"),
    ("Pneumothorax cannot be excluded.", "Pneumothorax", "possible", "patient"),
    ("Pneumonia vs atelectasis.", "atelectasis", "possible", "patient"),
    ("r/o ACS.", "ACS", "possible", "patient"),
    # hypothetical
    (
        "Return to the ED if she develops shortness of breath.",
        "shortness of breath",
        "hypothetical",
        "patient",
    ),
    ("Monitor for bleeding.", "bleeding", "hypothetical", "patient"),
    ("At risk of falls.", "falls", "hypothetical", "patient"),
    ("Heparin for DVT prophylaxis.", "DVT", "hypothetical", "patient"),
    # historical
    ("History of MI in 2015.", "MI", "historical", "patient"),
    ("h/o DVT, resolved.", "DVT", "historical", "patient"),
    ("Status post appendectomy for appendicitis.", "appendicitis", "historical", "patient"),
    # chronic conditions stay present after a history cue
    ("History of hypertension.", "hypertension", "present", "patient"),
    ("PMH: HTN, DM2, HLD.", "HLD", "present", "patient"),
    # family
    ("Mother had MI at 52.", "MI", "present", "family"),
    ("Father with type 2 diabetes.", "type 2 diabetes", "present", "family"),
    ("Family history of colon cancer.", "colon cancer", "present", "family"),
    ("No family history of CAD.", "CAD", "absent", "family"),
    # a relative cue reaches past terminators ("who", "developed"), only ";" ends it
    ("FHx: uncle who developed pancreatitis from alcohol.", "pancreatitis", "present", "family"),
    (
        "She ate salty food over a family holiday and ran out of furosemide.",
        "furosemide",
        "historical",  # ran out: not taking it now
        "patient",
    ),
    # plain present
    ("Presents with chest pain.", "chest pain", "present", "patient"),
]


@pytest.mark.parametrize(("text", "mention", "assertion", "subject"), CASES)
def test_assertion(pipe, text: str, mention: str, assertion: str, subject: str) -> None:
    m = find(pipe.annotate(text), mention)
    assert (m.assertion, m.subject) == (assertion, subject), m.cues


def test_cue_evidence_points_at_the_trigger(pipe) -> None:
    text = "Patient denies chest pain."
    m = find(pipe.annotate(text), "chest pain")
    (cue,) = m.cues
    assert cue.rule == "neg.deny" and cue.category == "negated_existence"
    assert text[cue.start : cue.end] == cue.text == "denies"


def test_family_relationship_and_onset_age(pipe) -> None:
    record = pipe.annotate("FHx: Mother had MI at 52. Brother with colon cancer diagnosed at 48.")
    mi, cancer = find(record, "MI"), find(record, "colon cancer")
    assert (mi.relationship, mi.onset_age) == ("MTH", 52)
    assert (cancer.relationship, cancer.onset_age) == ("BRO", 48)


def test_family_history_section_default(pipe) -> None:
    record = pipe.annotate("Family History:\nDiabetes and hypertension.")
    assert {(m.text, m.subject, m.relationship) for m in record.mentions} == {
        ("Diabetes", "family", "FAMMEMB"),
        ("hypertension", "family", "FAMMEMB"),
    }
    assert all(c.rule == "section:family_history" for m in record.mentions for c in m.cues)


def test_instructions_section_is_hypothetical(pipe) -> None:
    record = pipe.annotate("Discharge Instructions:\nCall for chest pain.")
    assert find(record, "chest pain").assertion == "hypothetical"


def test_matching_only_mention_sentences_changes_no_decision(samples) -> None:
    pipe = nlp.load("lexicon")
    assert_windowing_changes_nothing(
        pipe.nlp.get_pipe("clinical_context"),
        "_matcher",
        samples,
        lambda text: [(m.start, m.end, m.assertion, m.subject, m.cues) for m in pipe.annotate(text).mentions],
    )


@pytest.mark.parametrize(
    ("phrase", "wordings"),
    [
        ("no fever", ["no fever"]),
        ("[no|without] fever", ["no fever", "without fever"]),
        ("[no|without][ any]? fever", ["no any fever", "no fever", "without any fever", "without fever"]),
        ("fever (-)", ["fever (-)"]),
        ("[a|]", ["a"]),
    ],
)
def test_expand_phrase(phrase: str, wordings: list[str]) -> None:
    assert expand_phrase(phrase) == wordings


def test_split_first_token_makes_one_pattern_per_alternative() -> None:
    pattern = [{"LOWER": {"IN": ["in", "since"]}}, {"SHAPE": "dddd"}]
    assert split_first_token(pattern) == [
        [{"LOWER": "in"}, {"SHAPE": "dddd"}],
        [{"LOWER": "since"}, {"SHAPE": "dddd"}],
    ]
    assert split_first_token([{"ORTH": {"IN": [":", "-"]}}, {"LOWER": "no"}]) == [
        [{"ORTH": ":"}, {"LOWER": "no"}],
        [{"ORTH": "-"}, {"LOWER": "no"}],
    ]
    assert split_first_token([{"LIKE_NUM": True}]) == [[{"LIKE_NUM": True}]]
    optional = [{"LOWER": {"IN": ["in"]}, "OP": "?"}]
    assert split_first_token(optional) == [optional]


def test_regex_and_plain_word_rules_match_as_spacy_matches_them() -> None:
    blank = spacy.blank("en")
    rules = [
        ConTextRule("year", "HISTORICAL", pattern=[{"TEXT": {"REGEX": r"^(\d{1,2}/)?(19|20)\d\d$"}}]),
        ConTextRule("day", "THIS_STAY", pattern=[{"LOWER": {"REGEX": r"^(hd|pod)#?\d{1,2}$"}}]),
        ConTextRule("in year", "HISTORICAL", pattern=[{"LOWER": "in"}, {"TEXT": {"REGEX": r"^\d{4}$"}}]),
        ConTextRule("no", "NEGATED_EXISTENCE"),
        ConTextRule(
            "shouted",
            "POSSIBLE_EXISTENCE",
            pattern=[{"LOWER": "cannot"}, {"LOWER": "be"}, {"LOWER": "excluded"}],
        ),
    ]
    full = MedspacyMatcher(blank, prune=False)
    full.add(rules)
    windowed = WindowedMatcher(full, lambda doc: [(0, len(doc))], anchored=False)
    assert len(windowed._token) == 1  # "in year" stays with spaCy's Matcher
    doc = blank(
        "MI in 2015, CABG 3/2021; no fever on HD4 or POD#2; 1899 and hd123 and 2015x are not dates."
        " PE CANNOT BE EXCLUDED."
    )
    found = windowed(doc)
    assert found == sorted(full(doc), key=lambda m: m[1:])
    assert {doc[s:e].text for _, s, e in found} == {
        "in 2015",
        "2015",
        "3/2021",
        "no",
        "HD4",
        "POD#2",
        "CANNOT BE EXCLUDED",
    }
    assert windowed(doc, [(0, 3)]) == [m for m in windowed(doc) if m[2] <= 3]


@pytest.mark.parametrize("direction", ["FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO"])
@pytest.mark.parametrize("max_scope", [None, 1, 3, 20])
def test_a_cue_told_its_sentence_has_medspacys_scope(direction: str, max_scope: int | None) -> None:
    blank = spacy.blank("en")
    blank.add_pipe("sentencizer")
    doc = blank("Stable. The patient has no fever or chills or cough at all today. Good.")
    sent = list(doc.sents)[1]
    rule = ConTextRule("no", "NEGATED_EXISTENCE", direction=direction, max_scope=max_scope)
    for start in range(sent.start, sent.end - 1):
        cue = _Cue(rule, start, start + 1, (sent.start, sent.end), (None, None))
        assert cue.scope_span == ConTextModifier(rule, start, start + 1, doc).scope_span


def test_keep_longest_keeps_same_extent_matches() -> None:
    matches = [(1, 0, 2), (2, 1, 2), (3, 0, 2), (4, 3, 4), (5, 2, 5)]
    # (5, 2, 5) is longest; (1, 0, 2) and (3, 0, 2) share an extent and both stay; the others overlap
    assert keep_longest(matches) == [(1, 0, 2), (3, 0, 2), (5, 2, 5)]


def test_keep_longest_drops_only_for_a_rival() -> None:
    matches = [(1, 0, 3), (2, 0, 2), (3, 2, 4)]
    assert keep_longest(matches) == [(1, 0, 3)]
    # rules 1 and 2 never modify the same mention label, so the shorter stays
    rivals = lambda a, b: {a, b} != {1, 2}  # noqa: E731
    assert keep_longest(matches, rivals) == [(2, 0, 2), (1, 0, 3)]


@pytest.mark.parametrize(
    ("text", "mention", "label", "assertion"),
    [
        # one wording, two rules, told apart by the mention's label
        ("Ultrasound to rule out DVT.", "Ultrasound", "PROCEDURE", "hypothetical"),
        ("Ultrasound to rule out DVT.", "DVT", "PROBLEM", "possible"),
        # a drug's longer cue ("was treated with") does not hide a problem's ("was treated")
        ("UTI was treated with nitrofurantoin.", "UTI", "PROBLEM", "historical"),
        ("UTI was treated with nitrofurantoin.", "nitrofurantoin", "DRUG", "historical"),
        # a diagnosis date is an onset: the disease diagnosed goes on, what follows it is past
        ("CLL diagnosed in 2018, under observation.", "CLL", "PROBLEM", "present"),
        ("PCOS diagnosed at 19, on spironolactone.", "PCOS", "PROBLEM", "present"),
        (
            "Heart failure diagnosed in 2019 after a viral myocarditis.",
            "viral myocarditis",
            "PROBLEM",
            "historical",
        ),
        ("PTSD since military deployment in 2008.", "PTSD", "PROBLEM", "present"),
        (
            "No change in her mitral regurgitation compared with 2021.",
            "mitral regurgitation",
            "PROBLEM",
            "present",
        ),
        ("Low back pain since a lifting injury at work in 2018.", "Low back pain", "PROBLEM", "present"),
        ("Atrial fibrillation first noted in 2019, on apixaban.", "apixaban", "DRUG", "present"),
        # a year dates its sentence's event; a maintenance drug keeps its disease; a monthly procedure goes on
        ("DVT of the left leg after knee replacement in 2012.", "DVT", "PROBLEM", "historical"),
        (
            "Multiple myeloma on lenalidomide maintenance after a transplant in 2021.",
            "Multiple myeloma",
            "PROBLEM",
            "present",
        ),
        (
            "Variceal bleeding in 2021 and ascites requiring monthly paracentesis.",
            "paracentesis",
            "PROCEDURE",
            "present",
        ),
        # a problem treated is over, unless treated in this stay
        ("Pneumonia in 2019 was treated with levofloxacin.", "Pneumonia", "PROBLEM", "historical"),
        ("H. pylori was treated.", "H. pylori", "PROBLEM", "historical"),
        (
            "She developed C. diff colitis on day 5 and was treated with oral vancomycin.",
            "C. diff colitis",
            "PROBLEM",
            "present",
        ),
        ("HOSPITAL COURSE:\nPneumonia: treated with ceftriaxone.", "Pneumonia", "PROBLEM", "present"),
        (
            "Hyperkalemia to 6.8 on admission was treated with insulin, dextrose and calcium and resolved.",
            "Hyperkalemia",
            "PROBLEM",
            "historical",
        ),
        # quitting ends a habit; trying to quit does not
        ("Tobacco use, 50 pack-years, quit 2018.", "Tobacco use", "PROBLEM", "historical"),
        ("Tobacco use, trying to quit.", "Tobacco use", "PROBLEM", "present"),
        ("Tobacco: never.", "Tobacco", "PROBLEM", "absent"),
        ("Sulfa: SJS - NEVER GIVE.", "SJS", "PROBLEM", "present"),
        # plans said after the act, and a test to tell two conditions apart
        ("Colonoscopy was deferred to the outpatient setting.", "Colonoscopy", "PROCEDURE", "hypothetical"),
        ("Allopurinol should be started once the flare has settled.", "Allopurinol", "DRUG", "hypothetical"),
        ("He was started on carvedilol prior to discharge.", "carvedilol", "DRUG", "present"),
        (
            "Uptake scan to distinguish Graves disease from a toxic goiter.",
            "Graves disease",
            "PROBLEM",
            "possible",
        ),
        # an episode of a lasting condition ends
        ("Was treated for a COPD exacerbation in January.", "COPD exacerbation", "PROBLEM", "historical"),
        ("Was treated for COPD in January.", "COPD", "PROBLEM", "present"),
        # "on HD2" is a day, not a drug or device the patient is on
        ("Underwent cardiac catheterization on HD2 with DES to the LAD.", "DES", "PROCEDURE", "present"),
        # a course completed, an admission before this one, a drug had been on, a value back to normal
        ("Discharged on a prednisone taper, which he completed.", "prednisone", "DRUG", "historical"),
        ("Colonoscopy was completed without complication.", "Colonoscopy", "PROCEDURE", "present"),
        ("She was previously admitted in June for SBP.", "SBP", "PROBLEM", "historical"),
        ("He had been on prednisone for a flare.", "prednisone", "DRUG", "historical"),
        ("His delirium cleared by hospital day 5.", "delirium", "PROBLEM", "historical"),
        ("Lymphoma diagnosed 2016, in complete remission.", "Lymphoma", "PROBLEM", "historical"),
        # a month and year dates what it follows
        ("Brain MRI 5/2024 without metastases.", "Brain MRI", "TEST", "historical"),
        # capitals tokenize differently ("CANNOT" is one token, "cannot" two)
        ("MALIGNANCY CANNOT BE EXCLUDED.", "MALIGNANCY", "PROBLEM", "possible"),
        ("Malignancy cannot be excluded.", "Malignancy", "PROBLEM", "possible"),
        # a chronic condition known only by its ICD-10-CM category stays present after "history of"
        ("History of atrial fibrillation.", "atrial fibrillation", "PROBLEM", "present"),
        ("History of appendicitis.", "appendicitis", "PROBLEM", "historical"),
        # a test or procedure in doubt has not happened yet
        ("Consider colonoscopy.", "colonoscopy", "PROCEDURE", "hypothetical"),
        ("Consider pneumonia.", "pneumonia", "PROBLEM", "possible"),
        ("Colonoscopy scheduled next week.", "Colonoscopy", "PROCEDURE", "hypothetical"),
        ("Fevers: no\nCough: yes", "Fevers", "PROBLEM", "absent"),
        ("Clubbing - no.", "Clubbing", "PROBLEM", "absent"),
        ("CXR - no effusion.", "effusion", "PROBLEM", "absent"),
        ("72 year old man with chest pain.", "chest pain", "PROBLEM", "present"),
        ("Cough for the past 3 days.", "Cough", "PROBLEM", "present"),
        ("Had pneumonia in the past.", "pneumonia", "PROBLEM", "historical"),
        # no cue overlaps a mention: "no difficulty" is pseudo-negation unless the difficulty is the mention
        ("No difficulty breathing.", "difficulty breathing", "PROBLEM", "absent"),
        ("Had no difficulty with the insulin injections.", "insulin", "DRUG", "present"),
        ("CVA in 2011 without residual deficits.", "residual deficits", "PROBLEM", "absent"),
        # a bare year dates a problem or procedure, never a dose
        ("Cholecystectomy 2003.", "Cholecystectomy", "PROCEDURE", "historical"),
        ("Metformin 1000 mg daily.", "Metformin", "DRUG", "present"),
        # chronic: by a term inside the mention, or by the word; a resolution cue still wins
        ("History of CKD stage 3.", "CKD stage 3", "PROBLEM", "present"),
        (
            "Chronic low back pain since a lifting injury in 2008.",
            "Chronic low back pain",
            "PROBLEM",
            "present",
        ),
        ("Had asthma as a teenager but outgrew it.", "asthma", "PROBLEM", "historical"),
        # how long something has lasted is not history; when it happened is
        ("3-day history of cough.", "cough", "PROBLEM", "present"),
        ("On warfarin since 2012.", "warfarin", "DRUG", "present"),
        ("Was on metformin until 2019.", "metformin", "DRUG", "historical"),
        ("Mononucleosis at age 16.", "Mononucleosis", "PROBLEM", "historical"),
        ("Seizure at 0600 today.", "Seizure", "PROBLEM", "present"),
        # a drug held, stopped or run out of is stopped (MedicationStatement.status); continued is active
        ("Lisinopril was held for hypotension.", "Lisinopril", "DRUG", "historical"),
        ("She ran out of her amlodipine.", "amlodipine", "DRUG", "historical"),
        ("Continue metoprolol 25 mg BID.", "metoprolol", "DRUG", "present"),
        # a relative's condition is never historical, whatever dates it
        ("Family History:\nMother with breast cancer in 2010.", "breast cancer", "PROBLEM", "present"),
        # a Plan section makes tests and procedures planned, and nothing else
        (
            "Plan:\n- CT abdomen/pelvis with contrast\n- NPO after midnight",
            "CT abdomen/pelvis",
            "TEST",
            "hypothetical",
        ),
        ("Plan:\n- CT abdomen/pelvis with contrast\n- NPO after midnight", "NPO", "PROBLEM", "present"),
        # a Past Surgical History section makes procedures past, and nothing else
        (
            "PAST SURGICAL HISTORY: Tonsillectomy. Cesarean section x2.",
            "Cesarean section",
            "PROCEDURE",
            "historical",
        ),
        ("Past surgical history: hernia repair complicated by CKD.", "CKD", "PROBLEM", "present"),
        # "received" ends a negation's scope, but not inside "never received"
        ("Never received chemotherapy or radiation.", "chemotherapy", "DRUG", "absent"),
        # a date beside a drug the patient is on dates something else; "until" says it is over
        ("Epilepsy, on levetiracetam, last seizure in 2022.", "levetiracetam", "DRUG", "present"),
        ("Previous DVT, on warfarin until 2019.", "warfarin", "DRUG", "historical"),
        ("Previously on warfarin, now on apixaban since 2021.", "apixaban", "DRUG", "present"),
        ("Simvastatin was changed to atorvastatin.", "Simvastatin", "DRUG", "historical"),
        ("Simvastatin was changed to atorvastatin.", "atorvastatin", "DRUG", "present"),
        ("Previously tried fluoxetine without benefit.", "fluoxetine", "DRUG", "historical"),
        ("Diuresed with IV furosemide.", "IV furosemide", "DRUG", "historical"),
        ("Breast cancer treated with lumpectomy.", "lumpectomy", "PROCEDURE", "historical"),
        # "at 2 blocks" is a distance, "at age 4" an age, and the age does not swallow the next word
        ("Claudication at 2 blocks.", "Claudication", "PROBLEM", "present"),
        ("Kawasaki disease at age 4 treated with IVIG.", "IVIG", "DRUG", "historical"),
        ("Asbestos exposure in the 1970s.", "Asbestos exposure", "PROBLEM", "historical"),
        ("Last HbA1c 8.1% in March.", "HbA1c", "TEST", "historical"),
        ("Had a urinary tract infection last month.", "urinary tract infection", "PROBLEM", "historical"),
        # "no recurrence" says a condition is over, even a chronic one; "no recurrence of X" negates X
        ("Atrial flutter s/p ablation, no recurrence.", "Atrial flutter", "PROBLEM", "historical"),
        ("No recurrence of atrial fibrillation since ablation.", "atrial fibrillation", "PROBLEM", "absent"),
        (
            "History of recurrent urinary tract infections.",
            "recurrent urinary tract infections",
            "PROBLEM",
            "present",
        ),
        # a terminator ends a cue's scope however short it is (medspaCy's overlap test missed
        # a scope inside the terminator's, so "on" used to reach past ";")
        ("Epilepsy on levetiracetam; craniotomy 2011.", "craniotomy", "PROCEDURE", "historical"),
        # a cue in parentheses does not reach past them, but may speak of what they qualify
        ("PMH: gout (no recent flares), psoriasis, GERD.", "psoriasis", "PROBLEM", "present"),
        ("PMH: gout (no recent flares), psoriasis, GERD.", "GERD", "PROBLEM", "present"),
        ("Treated syphilis (completed 2016).", "syphilis", "PROBLEM", "historical"),
        # "(-)" negates the list after it, "p/w" opens what the patient has
        ("ROS: (-) headache, vertigo, tinnitus, epistaxis, hoarseness.", "hoarseness", "PROBLEM", "absent"),
        ("58F w/ no prior surgeries p/w 2 days of flank pain.", "flank pain", "PROBLEM", "present"),
        # over: a drip weaned off, a line removed, a drug narrowed to another
        ("Started a nicardipine drip, which was weaned off overnight.", "nicardipine", "DRUG", "historical"),
        ("The Foley catheter was removed on POD1.", "Foley catheter", "PROCEDURE", "historical"),
        ("Vancomycin narrowed to cefazolin on day 3.", "Vancomycin", "DRUG", "historical"),
        ("Meropenem was continued; will continue meropenem for 14 days.", "meropenem", "DRUG", "present"),
        # not done and not planned
        ("Heparin was not started given the bleed.", "Heparin", "DRUG", "absent"),
        ("Bronchoscopy declined by the patient.", "Bronchoscopy", "PROCEDURE", "absent"),
        ("Not a candidate for TAVR at this time.", "TAVR", "PROCEDURE", "absent"),
        # a result still to come is of a test already done
        ("Urine culture pending.", "Urine culture", "TEST", "present"),
        # a problem headed as resolved is over; the next sentence is not
        ("# Hyperkalemia, resolved: 70M with ESRD on HD.", "Hyperkalemia", "PROBLEM", "historical"),
        ("# Hyperkalemia, resolved: 70M with ESRD on HD.", "ESRD", "PROBLEM", "present"),
        ("Her first pregnancy was complicated by preeclampsia.", "preeclampsia", "PROBLEM", "historical"),
        ("Tobacco: h/o chewing tobacco, none in 5 years.", "chewing tobacco", "PROBLEM", "historical"),
        # a test, procedure or drug given on a condition is a plan, on either side of the "if"
        ("Add spironolactone if potassium allows.", "spironolactone", "DRUG", "hypothetical"),
        ("Echo if the murmur persists.", "Echo", "TEST", "hypothetical"),
        # an event with none since is over; a timed stop or hold before a procedure is a plan
        ("Two episodes of hematemesis this morning, none since.", "hematemesis", "PROBLEM", "historical"),
        ("Type and screen the morning of surgery.", "Type and screen", "TEST", "hypothetical"),
        ("Outpatient colonoscopy.", "colonoscopy", "PROCEDURE", "hypothetical"),
        ("Repeat biopsy not indicated.", "biopsy", "PROCEDURE", "absent"),
        ("Offer buprenorphine at discharge.", "buprenorphine", "DRUG", "hypothetical"),
        # a problem said to have been treated is over; a chronic one stays present
        ("Syphilis was treated in 2015.", "Syphilis", "PROBLEM", "historical"),
        ("Latent TB, treated with isoniazid.", "Latent TB", "PROBLEM", "historical"),
        ("Hypertension treated with amlodipine.", "Hypertension", "PROBLEM", "present"),
        ("Echo 2018: EF 40%.", "Echo", "TEST", "historical"),
        # instructions speak of what brought the patient in as fact, and of surgery done as past
        (
            "Discharge Instructions:\nYou were admitted with a kidney infection.",
            "kidney infection",
            "PROBLEM",
            "present",
        ),
        ("Discharge Instructions:\nYou had a hernia repair.", "hernia repair", "PROCEDURE", "historical"),
        # a suspicion is of a problem: the test or drug it prompts has happened
        ("Given concern for HIT, argatroban was started.", "argatroban", "DRUG", "present"),
        ("MRI spine was obtained for suspected cord ischemia.", "MRI spine", "TEST", "present"),
        ("Possible colonoscopy next month.", "colonoscopy", "PROCEDURE", "hypothetical"),
        # a mention that dates itself, or says it lasts
        ("Prior GI bleed.", "Prior GI bleed", "PROBLEM", "historical"),
        ("Remote coronary stent.", "Remote coronary stent", "PROCEDURE", "historical"),
        (
            "History of stroke with residual left-sided weakness.",
            "residual left-sided weakness",
            "PROBLEM",
            "present",
        ),
        # a problem-based hospital course line is this stay's problem
        ("# Cellulitis: treated with IV cefazolin.", "Cellulitis", "PROBLEM", "present"),
        # follow-up and return instructions
        (
            "FOLLOW-UP: Surgery clinic in 2 weeks for staple removal.",
            "staple removal",
            "PROCEDURE",
            "hypothetical",
        ),
        (
            "Call the transplant clinic for fever or graft tenderness.",
            "graft tenderness",
            "PROBLEM",
            "hypothetical",
        ),
        (
            "Return to the ED for shortness of breath, chest pain, coughing up blood, or any signs of"
            " bleeding such as black stools.",
            "black stools",
            "PROBLEM",
            "hypothetical",
        ),
        (
            "She will return in 2-3 weeks for ureteroscopy with stent removal.",
            "stent removal",
            "PROCEDURE",
            "hypothetical",
        ),
        (
            "Tonsillectomy will be considered once the infection resolves.",
            "Tonsillectomy",
            "PROCEDURE",
            "hypothetical",
        ),
        # negation
        ("Steroids were not indicated.", "Steroids", "DRUG", "absent"),
        ("Stool studies were not sent.", "Stool studies", "TEST", "absent"),
        ("Treated with prednisone (colchicine avoided).", "colchicine", "DRUG", "absent"),
        ("Culture negative, ruling out septic arthritis.", "septic arthritis", "PROBLEM", "absent"),
        ("Bland urinalysis, arguing against UTI.", "UTI", "PROBLEM", "absent"),
        ("No evidence of vascular injury on CTA.", "vascular injury", "PROBLEM", "absent"),
        ("No evidence of vascular injury on CTA.", "CTA", "TEST", "present"),
        (
            "The serotonin release assay was negative, so HIT was excluded.",
            "serotonin release assay",
            "TEST",
            "present",
        ),
        ("Adenocarcinoma with negative margins.", "Adenocarcinoma", "PROBLEM", "present"),
        ("Hyperthyroidism: TSH <0.01, free T4 4.2.", "Hyperthyroidism", "PROBLEM", "present"),
        # what may come, and what is watched for
        ("Prophylaxis: valganciclovir for CMV and TMP-SMX for PJP.", "PJP", "PROBLEM", "hypothetical"),
        ("Stent-related discomfort may occur.", "Stent-related discomfort", "PROBLEM", "hypothetical"),
        ("She was monitored in the neuro ICU for vasospasm.", "vasospasm", "PROBLEM", "hypothetical"),
        # a procedure in the past medical history is past, unless still used; "ongoing" keeps a problem
        (
            "PAST MEDICAL HISTORY: Atrial fibrillation. Mitral valve replacement (mechanical, 2011).",
            "Mitral valve replacement",
            "PROCEDURE",
            "historical",
        ),
        ("PMH: OSA on CPAP, HTN.", "CPAP", "PROCEDURE", "present"),
        (
            "Shingles in 2021, with ongoing postherpetic neuralgia.",
            "postherpetic neuralgia",
            "PROBLEM",
            "present",
        ),
        # a lasting condition the mention names, though it carries no chronic code
        ("PAST MEDICAL HISTORY: Asthma, eczema, seasonal allergies.", "eczema", "PROBLEM", "present"),
        ("PMH: DM2 c/b retinopathy and neuropathy.", "retinopathy", "PROBLEM", "present"),
        ("PMH: Parkinson disease, orthostatic hypotension.", "Parkinson disease", "PROBLEM", "present"),
        # dev11 and dev12
        (
            "Return to ED immediately (call 911) for new weakness or vision loss.",
            "vision loss",
            "PROBLEM",
            "hypothetical",
        ),
        ("May need MR perfusion or repeat biopsy.", "repeat biopsy", "PROCEDURE", "hypothetical"),
        ("Referred to pulmonary rehab.", "pulmonary rehab", "PROCEDURE", "hypothetical"),
        ("Hospice referral placed for after discharge.", "Hospice", "PROCEDURE", "hypothetical"),
        ("Lithium level to be rechecked in 5-7 days.", "Lithium level", "TEST", "hypothetical"),
        ("Syncope, likely vasovagal vs orthostatic.", "Syncope", "PROBLEM", "present"),
        (
            "Likely medication overuse headache superimposed on chronic migraine.",
            "chronic migraine",
            "PROBLEM",
            "present",
        ),
        (
            "PMH of HFpEF and CKD, admitted after an unwitnessed fall.",
            "unwitnessed fall",
            "PROBLEM",
            "present",
        ),
        ("86 yo F admitted w/ CAP, treated with ceftriaxone.", "CAP", "PROBLEM", "present"),
        ("No events captured on 72-h video EEG.", "video EEG", "TEST", "present"),
        ("Aspergilloma was considered but not seen on CT.", "Aspergilloma", "PROBLEM", "absent"),
        (
            "Critical illness myopathy suspected given proximal weakness.",
            "Critical illness myopathy",
            "PROBLEM",
            "possible",
        ),
        (
            "Will be scheduled for laparoscopic cholecystectomy.",
            "laparoscopic cholecystectomy",
            "PROCEDURE",
            "hypothetical",
        ),
        ("Continue nintedanib; monitor LFTs monthly.", "LFTs", "TEST", "hypothetical"),
        # a doubt reaches a test or drug only close by
        ("Possible colonoscopy.", "colonoscopy", "PROCEDURE", "hypothetical"),
        (
            "Possible early cellulitis at the left groin incision, marked, and started on cephalexin.",
            "cephalexin",
            "DRUG",
            "present",
        ),
    ],
)
def test_assertion_of_a_target(text: str, mention: str, label: str, assertion: str) -> None:
    pipe = nlp.load("lexicon")
    start = text.index(mention)
    (m,) = pipe.annotate(text, targets=[(start, start + len(mention), label)]).mentions
    assert m.assertion == assertion, m.cues


@pytest.mark.parametrize(
    ("text", "occurrence", "subject", "relationship"),
    [
        # the experiencer cue nearest the mention decides
        (
            "Family History: Father with hypertension. Patient himself has no hypertension.",
            1,
            "family",
            "FTH",
        ),
        (
            "Family History: Father with hypertension. Patient himself has no hypertension.",
            2,
            "patient",
            None,
        ),
        ("Patient's mother had hypertension.", 1, "family", "MTH"),
        ("Her mother states she has hypertension.", 1, "patient", None),
        # a family history cue names no relative: the relative named nearest in the clause does
        ("Family History: hypertension in mother.", 1, "family", "MTH"),
        ("FHx: diabetes (father), hypertension (mother).", 1, "family", "MTH"),
        ("FHx: hypertension in maternal aunt.", 1, "family", "AUNT"),
        ("FHx: hypertension in mother and both grandmothers.", 1, "family", "MTH"),
        ("Family History: Parents with diabetes; no family history of hypertension.", 1, "family", "FAMMEMB"),
        ("His children have hypertension.", 1, "family", "CHILD"),
        # a relative who opens a clause of their own speaks of what follows; ";" ends a relative's reach
        ("Father with hypertension and mother with diabetes.", 1, "family", "FTH"),
        ("FHx: Father with CAD, had hypertension at 54; mother with diabetes.", 1, "family", "FTH"),
        ("IPF in his father and hypertension in his mother.", 1, "family", "MTH"),
        ("Brother with ulcerative colitis diagnosed at age 22, now with hypertension.", 1, "family", "BRO"),
        ("Sister with MS; no other hypertension in family.", 1, "family", "FAMMEMB"),
        # a relative told, or telling, is not the one who has it
        ("Parents were instructed to return for hypertension.", 1, "patient", None),
        ("Her mother, who is her caregiver, reports hypertension.", 1, "patient", None),
    ],
)
def test_subject_of_a_target(text: str, occurrence: int, subject: str, relationship: str | None) -> None:
    pipe = nlp.load("lexicon")
    start = -1
    for _ in range(occurrence):
        start = text.index("hypertension", start + 1)
    (m,) = pipe.annotate(text, targets=[(start, start + len("hypertension"), "PROBLEM")]).mentions
    assert (m.subject, m.relationship) == (subject, relationship), m.cues


@pytest.mark.parametrize(
    ("text", "onset_age"),
    [
        ("Family History: father with hypertension at 52.", 52),
        ("Family History: brother was diagnosed with hypertension when he was 28.", 28),
        ("Family History: father deceased at 70 from hypertension.", 70),
        ("Family History: father, now 80, with hypertension.", None),
    ],
)
def test_onset_age_of_a_relative(text: str, onset_age: int | None) -> None:
    start = text.index("hypertension")
    (m,) = (
        nlp.load("lexicon").annotate(text, targets=[(start, start + len("hypertension"), "PROBLEM")]).mentions
    )
    assert (m.subject, m.onset_age) == ("family", onset_age), m.cues
