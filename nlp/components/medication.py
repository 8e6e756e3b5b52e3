"""Medication attributes by rule: strength, dose, route, frequency, duration, PRN and its reason.

First, one mention per product (:func:`product_mentions`): a combination is one mention
("sacubitril-valsartan") and a brand that restates the drug before it is none ("atorvastatin
(LIPITOR)"). Then for each DRUG or DRUG_CLASS mention the attributes are read from the text that
follows it in the same sentence and line, up to the next drug ("metformin 1000 mg PO BID,
lisinopril 10mg daily"). Each attribute keeps its exact text and offsets plus a normalised value
(UCUM unit, SNOMED route, HL7 timing code). Vocabulary: ``resources/en/medication.json``.
"""

import re
from dataclasses import dataclass
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

from nlp import resources
from nlp.components.lexicon import SPAN_GROUP
from nlp.components.sentences import sentence_ends
from nlp.extensions import copy_span_attributes

MED_LABELS = {"DRUG", "DRUG_CLASS"}
WINDOW_CHARS = 90
# a list item is the drug's whole line ("• albuterol (PROVENTIL HFA) 90 mcg/actuation inhaler    Inhale
# 2 puffs into the lungs every 6 (six) hours"); a bullet, a number or nothing before the drug
_ITEM_START = re.compile(r"[ \t]*(?:(?:[-*•·>#]|\d{1,3}[.)])[ \t]*)?")
ITEM_CHARS = 300
# a frequency's relation to meals belongs to it: "BID with meals", "daily before breakfast"
_MEALS = re.compile(
    r"\s+(?:with|before|after)\s+(?:meals|each meal|a meal|food|breakfast|lunch|dinner|supper)\b", re.I
)
# a PRN reason: up to five words ("fever or pain", "breakthrough pain"), or a threshold ("SBP > 160")
_REASON = (
    r"[a-z][a-z'/]*(?:-[a-z]+)*(?:\s+(?!(?:once|then|until|while|given|continue|hold)\b)"
    r"[a-z][a-z'/]*(?:-[a-z]+)*){0,4}?(?:\s*[<>]=?\s*\d+(?:\.\d+)?(?:\s*(?:min|mg|lbs?|kg|hours?|h))?)?"
)
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
# a line of directions under a drug ("levothyroxine 75 MCG tablet\n  Sig: Take 1 tablet by mouth daily")
_DIRECTIONS = re.compile(
    r"\n[ \t]*(?:sig\b:?|take|inject|apply|instill|inhale|use|place|give|chew|dissolve|insert|spray|"
    r"\d+(?:\.\d+)?\s*(?:tab|tablet|cap|capsule|puff|spray|drop|unit|mg|mcg|ml)s?\b)",
    re.IGNORECASE,
)
# what a number alone after a drug name is not: a unit, a dose form, a date, a time or a count
_BARE_STRENGTH = re.compile(rf"\s+(?P<value>{_NUM})(?:(?P<sep>[-/])(?P<high>{_NUM}))?(?![\w./%:-]|,\d)")
_WORD_NUMS = {
    **{
        w: i
        for i, w in enumerate(("one", "two", "three", "four", "five", "six", "seven", "eight", "nine"), 1)
    },
    **{"ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50},
    **{"sixty": 60, "one hundred": 100},
    "half": 0.5,
    "half a": 0.5,
    "1/2": 0.5,
    "½": 0.5,
}
# the directions of a prescription written as the next sentence of its line ("500 mg tablet. Sig: ...")
_SIG = re.compile(r"[ \t]*sig\b", re.IGNORECASE)
# a count of dose forms: "2", "1 1/2", "½", "one", "one (1)" (discharge "Sig:" lines write both)
_COUNT = r"(?:(?P<{name}>{nums})(?:\s*\(\s*\d+(?:\.\d+)?\s*\))?)"
# what a strength is per: "160 mg/5 mL", "5,000 units/mL", "250-50 mcg/dose", "0.1 units/kg/hr"
_PER_UNITS = {
    "ml": "mL",
    "g": "g",
    "l": "L",
    "dose": "{dose}",
    "actuation": "{actuation}",
    "act": "{actuation}",
    "spray": "{spray}",
    "puff": "{puff}",
    "hr": "h",
    "h": "h",
    "kg": "kg",
    "m2": "m2",
    "day": "d",
    "min": "min",
}
_PER_UNIT = "|".join(_PER_UNITS)
_PER_PART = re.compile(rf"\s*/\s*(?:(?P<amount>{_NUM})\s*)?(?P<unit>{_PER_UNIT})\b", re.IGNORECASE)
_PER = rf"(?P<per>(?:\s*/\s*(?:(?:{_NUM})\s*)?(?:{_PER_UNIT})\b)*)"  # _PER_PART, repeated, unnamed
# a volume of liquid after the strength is the dose ("160 mg/5 mL 7.5 mL", and in words and digits,
# as discharge "Sig:" lines write it: "Thirty (30) ML"); never a denominator
_VOLUME = re.compile(
    rf"(?<![\w./])(?<!/ )(?:(?P<word>{'|'.join(map(re.escape, _WORD_NUMS))})\s*\(\s*)?(?P<value>{_NUM})"
    r"(?(word)\s*\))"
    r"\s*(?P<form>ml|cc)(?![\w/])",
    re.IGNORECASE,
)
# between an amount and the drug it is of: "1 tablet of lisinopril", "2 puffs of her albuterol"
_OF = re.compile(r"\s+of\s+(?:(?:the|her|his|their|your|my)\s+)?$", re.IGNORECASE)
_AND_A_HALF = re.compile(r"(\d+)\s+1/2")  # "1 1/2 teaspoons"
# the parts of a combination product: "sacubitril-valsartan", "hydrocodone/APAP", "TMP / SMX"
_COMBINATION = re.compile(r"-|[ \t]*/[ \t]*")


def _alternation(patterns: list[str]) -> str:
    return "|".join(f"(?:{p})" for p in sorted(patterns, key=len, reverse=True))


def _bounded(alternation: str) -> str:
    return rf"(?<![\w/.])(?:{alternation})(?![\w/])"


@dataclass(frozen=True)
class MedicationRules:
    strength: re.Pattern[str]
    dose: re.Pattern[str]
    routes: list[tuple[re.Pattern[str], str | None, str]]
    frequencies: list[tuple[re.Pattern[str], str | None, str]]
    frequency_codes: dict[str, dict[str, str]]  # display -> number -> code
    prn: re.Pattern[str]
    duration: re.Pattern[str]
    indication: re.Pattern[str]
    units: dict[str, str]
    dose_forms: dict[str, str]
    duration_units: dict[str, str]

    @classmethod
    def from_resources(cls) -> "MedicationRules":
        spec = resources.load("medication")
        units = _alternation([re.escape(u) for u in spec.units])
        forms = _alternation([re.escape(f) for f in spec.dose_forms])
        dur_units = _alternation([re.escape(u) for u in spec.duration_units])
        nums = _alternation([_AND_A_HALF.pattern, *(re.escape(w) for w in _WORD_NUMS), _NUM])
        return cls(
            strength=re.compile(
                rf"(?<![\w.])(?P<value>{_NUM})(?:\s*(?:-|to)\s*(?P<high>{_NUM}))?\s*(?P<unit>{units})(?![\w])"
                + _PER,
                re.I,
            ),
            dose=re.compile(
                rf"(?<![\w.]){_COUNT.format(name='value', nums=nums)}"
                rf"(?:\s*(?:-|to)\s*{_COUNT.format(name='high', nums=nums)})?\s*(?P<form>{forms})(?:\(s\))?"
                r"(?![\w])",
                re.I,
            ),
            routes=[
                (re.compile(_bounded(p), re.I), e.code, e.display) for e in spec.routes for p in e.patterns
            ],
            frequencies=[
                (re.compile(_bounded(p), re.I), e.code, e.display)
                for e in spec.frequencies
                for p in e.patterns
            ],
            frequency_codes={e.display: e.codes_by_n for e in spec.frequencies if e.codes_by_n},
            prn=re.compile(
                _bounded(_alternation(spec.prn))
                + rf"(?:\s+(?:for\s+)?(?P<reason>{_REASON})"
                + r"(?=\s*(?:[,.;)\n]|$|\s-\s|\b(?:max|not|x|for|up to|may|every|q\d*h?|once|then|until|"
                + r"while|he|she|pt|patient|given|has|is|was|continue|hold|instead|ordered|used|which|"
                + r"that|and denies|per)\b|\d)))?",
                re.I,
            ),
            duration=re.compile(
                rf"(?<![\w])(?:x|for|times)\s*(?P<value>\d+)\s*(?:more\s+|additional\s+)?(?P<unit>{dur_units})"
                r"(?![\w])",
                re.I,
            ),
            indication=re.compile(r"(?<![\w])for\s+(?!\d)", re.I),
            units={k.lower(): v for k, v in spec.units.items()},
            dose_forms={k.lower(): v for k, v in spec.dose_forms.items()},
            duration_units={k.lower(): v for k, v in spec.duration_units.items()},
        )

    def lead(self, text: str, span: Span) -> dict[str, dict[str, Any]]:
        """The amount written before a drug: "takes 1 tablet of lisinopril", "2 puffs of albuterol",
        "10 mL of lactulose" (a dose), "34 units of Lantus", "1 gram of ceftriaxone" (a strength)."""
        line_start = text.rfind("\n", 0, span.start_char) + 1
        head = text[max(line_start, span.start_char - 60) : span.start_char]
        of = _OF.search(head)
        if of is None:
            return {}
        offset = span.start_char - len(head)
        amount = head[: of.start()]
        for label, pattern, entry in (
            ("dose", self.dose, self._dose),
            ("dose", _VOLUME, _volume),
            ("strength", self.strength, self._strength),
        ):
            m = next((m for m in pattern.finditer(amount) if m.end() == len(amount)), None)
            if m is not None:
                return {label: entry(m, offset)}
        return {}

    def _strength(self, m: re.Match[str], offset: int) -> dict[str, Any]:
        return {
            **_at(m, offset),
            "value": _number(m["value"]),
            "unit": self.units[m["unit"].lower()] + _per_unit(m["per"]),
            **({"high": _number(m["high"])} if m["high"] else {}),
        }

    def _dose(self, m: re.Match[str], offset: int) -> dict[str, Any]:
        return {
            **_at(m, offset),
            "value": _count(m["value"].lower()),
            "unit": self.dose_forms[m["form"].lower()],
            **({"high": _count(m["high"].lower())} if m["high"] else {}),
        }

    def extract(self, text: str, offset: int, *, reach: int = 50) -> dict[str, dict[str, Any]]:
        """Attributes found in ``text`` (which starts at character ``offset`` of the note).

        A dose must start within ``reach`` characters, a strength within ``reach - 10`` (at least
        40): a list item's directions may come after a long product name.
        """
        found: dict[str, dict[str, Any]] = {}

        def at(m: re.Match[str], group: int | str = 0) -> dict[str, Any]:
            return _at(m, offset, group)

        if (m := self.strength.search(text)) and m.start() <= max(40, reach - 10):
            found["strength"] = self._strength(m, offset)
        bare = _BARE_STRENGTH.match(text)
        if bare and not self.dose.match(text, bare.start("value")):
            strength = found.get("strength")
            if strength is None or strength["start"] > offset + bare.start("value"):
                found["strength"] = {  # "metformin 500 twice daily", "ASA 81": no unit written
                    **at(bare),
                    "text": text[bare.start("value") : bare.end()],
                    "start": offset + bare.start("value"),
                    "value": _number(bare["value"]),
                    "unit": None,
                    **({"high": _number(bare["high"])} if bare["high"] and bare["sep"] == "-" else {}),
                }
        if (m := self.dose.search(text)) and m.start() <= reach:
            found["dose"] = self._dose(m, offset)
        elif (
            (strength := found.get("strength"))
            and (m := _VOLUME.search(text, strength["end"] - offset))
            and m.start() <= reach
        ):
            found["dose"] = _volume(m, offset)
        strength = found.get("strength")
        if "dose" not in found and strength and strength["unit"] in ("mL", "L") and "high" not in strength:
            found["dose"] = found.pop("strength")  # "ibuprofen 7.5 mL q6h": a volume given is a dose
        dose = found.get("dose")
        for label, table in (("route", self.routes), ("frequency", self.frequencies)):
            best = None
            for pattern, code, display in table:
                for m in pattern.finditer(text):
                    if dose and dose["start"] <= offset + m.start() < dose["end"]:
                        continue  # "2 inh" is a dose; the route is not inside it
                    # the route of the directions, not of the product ("ophthalmic solution  Place 1
                    # drop into both eyes"); otherwise the first, longest
                    late = label == "route" and dose is not None and offset + m.start() >= dose["end"]
                    key = (not late, m.start(), -m.end())
                    if best is None or key < best[0]:
                        best = (key, m, code, display)
            if best:
                _, m, code, display = best
                groups = {k: v for k, v in m.groupdict().items() if v}
                if code is None and "n" in groups and label == "frequency":  # "2 (two) times daily": BID
                    code = self.frequency_codes.get(display, {}).get(groups["n"])
                    display = next((d for _, c, d in table if code and c == code), display)
                found[label] = {
                    **at(m),
                    "code": code,
                    "display": display.format(**groups) if groups else display,
                }
                if label == "frequency" and (meals := _MEALS.match(text, m.end())):
                    found[label]["text"] = text[m.start() : meals.end()]
                    found[label]["end"] = offset + meals.end()
        if m := self.prn.search(text):
            found["prn"] = {**at(m), "value": True}
            if m["reason"] and m["reason"].strip():
                reason = m["reason"].rstrip()
                found["prn_reason"] = {
                    "text": reason,
                    "start": offset + m.start("reason"),
                    "end": offset + m.start("reason") + len(reason),
                }
        if m := self.duration.search(text):
            found["duration"] = {
                **at(m),
                "value": int(m["value"]),
                "unit": self.duration_units[m["unit"].lower()],
            }
        return found


def _at(m: re.Match[str], offset: int, group: int | str = 0) -> dict[str, Any]:
    """A match's text and its offsets in the note (``offset``: where the matched text starts)."""
    return {"text": m.group(group), "start": offset + m.start(group), "end": offset + m.end(group)}


def _volume(m: re.Match[str], offset: int) -> dict[str, Any]:
    return {**_at(m, offset), "value": _number(m["value"]), "unit": "mL"}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _per_unit(text: str) -> str:
    """The UCUM tail of a strength's "per" part: "/5 mL" -> "/(5.mL)", "/kg/hr" -> "/kg/h"."""
    out = ""
    for m in _PER_PART.finditer(text):
        unit = _PER_UNITS[m["unit"].lower()]
        out += f"/({m['amount']}.{unit})" if m["amount"] else f"/{unit}"
    return out


def _count(text: str) -> float:
    """A count of dose forms in digits or words ("2", "two", "half", "1 1/2")."""
    if m := _AND_A_HALF.fullmatch(text):
        return float(m[1]) + 0.5
    return float(_WORD_NUMS.get(text, text.replace(",", "")))


class MedicationAttributes:
    """Sets ``span._.med_attrs`` on every medication mention, after making the mentions one per
    product (``products``; off for abstracts, where "cisplatin-paclitaxel" is a regimen of two
    drugs, each a mention as the corpora mark them)."""

    def __init__(self, rules: MedicationRules, *, products: bool = True) -> None:
        self.rules = rules
        self.products = products

    def __call__(self, doc: Doc) -> Doc:
        if SPAN_GROUP not in doc.spans:
            return doc
        spans = sorted(doc.spans[SPAN_GROUP], key=lambda s: (s.start, s.end))
        if self.products:
            spans = product_mentions(spans, self.rules)
            doc.spans[SPAN_GROUP] = spans
        text, sent_ends = doc.text, sentence_ends(doc)
        problems = {s.start_char: s for s in spans if s.label_ == "PROBLEM"}
        leads = {
            s.start_char: lead for s in spans if s.label_ in MED_LABELS and (lead := self.rules.lead(text, s))
        }
        for k, span in enumerate(spans):
            if span.label_ not in MED_LABELS:
                continue
            window, offset, item = self._window(text, sent_ends, span, spans[k + 1 :], leads)
            found = self.rules.extract(window, offset, reach=ITEM_CHARS if item else 50)
            # an amount before the drug: its dose always, its strength when none follows
            for name, value in leads.get(span.start_char, {}).items():
                if name == "dose" or name not in found:
                    found[name] = value
            if "prn" not in found and (indication := self._indication(window, offset, problems)):
                found["indication"] = indication
            span._.med_attrs = found
        return doc

    def _indication(self, window: str, offset: int, problems: dict[int, Span]) -> dict[str, Any] | None:
        """A problem the drug is given for: "lisinopril 10 mg daily for hypertension"."""
        for m in self.rules.indication.finditer(window):
            if (problem := problems.get(offset + m.end())) is not None:
                return {"text": problem.text, "start": problem.start_char, "end": problem.end_char}
        return None

    @staticmethod
    def _window(
        text: str, sent_ends: list[int], span: Span, following: list[Span], leads: dict[int, dict[str, Any]]
    ) -> tuple[str, int, bool]:
        """The text after the drug that speaks of it, where it starts, and whether it is a list item.

        It ends before the next drug, or before the amount that leads it ("... and 1 tablet of
        lisinopril": "1 tablet" is lisinopril's)."""
        start = span.end_char
        line_start = text.rfind("\n", 0, span.start_char) + 1
        item = bool(_ITEM_START.fullmatch(text, line_start, span.start_char))
        end = min(len(text), start + WINDOW_CHARS, sent_ends[span.end - 1])
        if item:  # its line, whatever the sentence splitter made of it (cut at the newline below)
            end = min(len(text), start + ITEM_CHARS)
        if _SIG.match(text, end):  # "Metformin 500 mg tablet. Sig: 1 tab PO BID": its directions
            end = min(len(text), start + 2 * WINDOW_CHARS)
        newline = text.find("\n", start, end if end > start else len(text))
        if newline != -1:
            end = newline
            if _DIRECTIONS.match(text, newline):  # the directions line under it belongs to it
                after = text.find("\n", newline + 1)
                end = min(after if after != -1 else len(text), newline + 1 + WINDOW_CHARS)
        semicolon = next((m.start() for m in _SEMICOLON.finditer(text, start, end)), -1)
        if semicolon != -1:  # "oxycodone 5 mg q4h; senna 2 tabs qHS", not "(PROVENTIL HFA;VENTOLIN HFA)"
            end = semicolon
        for other in following:
            if other.label_ in MED_LABELS and other.start_char >= start:
                if _COMBINATION.fullmatch(text, start, other.start_char):
                    start = other.end_char  # "hydrocodone-acetaminophen 5-325 mg": read after the partner
                    continue
                lead = leads.get(other.start_char)
                end = min(end, min(a["start"] for a in lead.values()) if lead else other.start_char)
                break
        return text[start:end], start, item


# between a drug and a brand that restates it: "atorvastatin (", "montelukast 10 MG tablet (",
# "cephalexin 500 MG capsule  Commonly known as: " (one line, no other drug)
_RESTATES = re.compile(r"[^\n]*?(?:\(|\b(?:commonly|also) known as:?)\s*", re.IGNORECASE)
_PARENTHESIS = re.compile(r"\s*\(\s*")
_SEMICOLON = re.compile(r";(?![^(\n]*\))")


def product_mentions(spans: list[Span], rules: MedicationRules) -> list[Span]:
    """One mention per medication product, where the note writes a product (``spans`` and the result
    in text order): names
    followed on their line by a strength or a dose ("atorvastatin (LIPITOR) 40 MG tablet").

    - Two drugs joined by "-" or "/" are one combination product ("sacubitril-valsartan 24-26 mg",
      "hydrocodone/APAP 5/325"), carrying both ingredients' codes.
    - A drug named in parentheses or after "commonly known as" restates the drug before it on its
      line when it is the whole parenthesis or shares its code ("atorvastatin (LIPITOR)",
      "montelukast 10 MG tablet (SINGULAIR)", "Commonly known as: KEFLEX"): no second mention.

    Elsewhere, as in an abstract's "levodopa/carbidopa" or "doxorubicin (DOX)", each name stays a
    mention. Given targets (evaluation mode) the mentions are kept as given.
    """
    if not spans or any(s._.source == "target" for s in spans):
        return spans
    doc = spans[0].doc
    text = doc.text
    out: list[Span] = []
    for span in spans:
        last = next((s for s in reversed(out) if s.label_ in MED_LABELS), None)
        if span.label_ != "DRUG" or last is None or last.label_ != "DRUG" or last.end > span.start:
            out.append(span)
            continue
        between = text[last.end_char : span.start_char]
        if not _described(text, span.end_char, rules) and not _described(text, last.end_char, rules):
            out.append(span)
            continue
        if _COMBINATION.fullmatch(between):
            product = Span(doc, last.start, span.end, "DRUG")
            copy_span_attributes(last, product)
            product._.codes = tuple(dict.fromkeys((*last._.codes, *span._.codes)))
            out[out.index(last)] = product
            continue
        if _RESTATES.fullmatch(between) and _restates(last, span, between):
            continue
        out.append(span)
    return out


def _restates(drug: Span, name: Span, between: str) -> bool:
    codes = {code[:2] for code in drug._.codes}
    same = bool(codes & {code[:2] for code in name._.codes})
    whole = _PARENTHESIS.fullmatch(between) and name.doc.text[name.end_char : name.end_char + 1] == ")"
    return same or bool(whole and (not codes or not name._.codes))


def _described(text: str, start: int, rules: MedicationRules) -> bool:
    """A strength or a dose follows ``start`` on its line, within 80 characters."""
    line_end = text.find("\n", start)
    end = min(start + 80, len(text) if line_end == -1 else line_end)
    return bool(rules.strength.search(text, start, end) or rules.dose.search(text, start, end))


@Language.factory("clinical_medication", assigns=["span._.med_attrs"], default_config={"products": True})
def make_clinical_medication(nlp: Language, name: str, products: bool) -> MedicationAttributes:
    return MedicationAttributes(MedicationRules.from_resources(), products=products)
