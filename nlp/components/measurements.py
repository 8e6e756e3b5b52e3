"""Vitals and labs with their values and units, read from the note text.

``find_measurements("BP 152/94 | HR 88 | LDL-C 162 mg/dL (H) on 03/2025")`` gives one
:class:`Measurement` per value: a blood pressure gives a systolic and a diastolic reading. Each has
its UCUM unit, LOINC code, the offsets of the whole evidence ("BP 152/94") and of the number, and
the date or day word written right next to it ("today's BP", "A1c 7.2 (03/2025)").

A value is read only after one of the names in ``resources/en/measurements.json``, or with a unit
that names it on its own ("152/94 mmHg", "88 bpm"). It is dropped, never clipped, when it is
implausible for its kind and unit, a goal or reference range ("LDL goal < 70", "target BP <
130/80"), someone else's ("father's LDL 250"), or a dose, duration, date or range rather than a
reading ("A1c 3 months ago", "HR 2/2 afib", "LDL 100-129"). Names, units, codes, ranges and cues
are data; this module compiles them once and reads a note in one pass of one scanning pattern.
"""

import functools
import re
from dataclasses import dataclass

from nlp import resources
from nlp.errors import ResourceError

_NOT_LETTER = r"(?![^\W\d_])"
_BLANK = r"[^\S\r\n]"  # a space, tab or no-break space; never a line break
_COMPARATOR = rf"(?:(?P<cmp><=|>=|=<|=>|≤|≥|<|>){_BLANK}*)?"
_COMPARATOR_BEFORE = re.compile(rf"(?:<|>|≤|≥)=?{_BLANK}*$")
_SENTENCE_BREAK = re.compile(r"[;\n|]|[.!?](?=\s|$)")
_CLAUSE_BREAK = re.compile(r"[;,\n|]|[.!?](?=\s|$)")
_BRACKETED_WORDS = r"\([^()\d\n]{1,25}\)"  # "(sitting)", "(calc)", "(right arm)"
_CONTEXT_CHARS = 120  # how far back a reading's clause and sentence are searched for cues
_WHEN_BEFORE_CHARS = 40
_METHOD_AFTER_CHARS = 25
_METHOD_AFTER_STOP = re.compile(r"[,;|\n]")
# value shapes that carry their own unit: group of the large part -> (group of the small part,
# the value as large * a + small * b, its UCUM unit); "5'10\"" is 70 [in_i], "7 lb 8 oz" 7.5 [lb_av]
_COMPOUND = {"feet": ("inches", 12.0, 1.0, "[in_i]"), "pounds": ("ounces", 1.0, 1 / 16, "[lb_av]")}


@dataclass(frozen=True)
class Measurement:
    """One value of one kind written in the note.

    Attributes:
        kind: What was measured: ``bp_systolic``, ``bp_diastolic``, ``heart_rate``, ``bmi``,
            ``weight``, ``height``, ``hba1c``, ``glucose``, ``ldl``, ``hdl``,
            ``total_cholesterol``, ``triglycerides``, ``creatinine`` or ``egfr``.
        value: The number as written (a height in feet and inches is given in inches).
        unit: UCUM code of the written unit, or of the usual unit when none is written.
        loinc: LOINC code for the kind in that unit (and method, for LDL).
        display: LOINC display of ``loinc``.
        start: Start of the whole evidence, the name included ("BP 152/94", "LDL 162 mg/dL").
        end: End of the whole evidence.
        value_start: Start of this value's number.
        value_end: End of this value's number.
        text: ``note[start:end]``.
        when: The date or day words written next to the value ("03/2025", "today"), else None.
        comparator: ``<``, ``<=``, ``>`` or ``>=`` written before the value ("eGFR >60"), else None.
        panel_loinc: LOINC code of the panel the value belongs to (blood pressure), else None.
        panel_display: LOINC display of ``panel_loinc``.
    """

    kind: str
    value: float
    unit: str
    loinc: str
    display: str
    start: int
    end: int
    value_start: int
    value_end: int
    text: str
    when: str | None
    comparator: str | None = None
    panel_loinc: str | None = None
    panel_display: str | None = None


@dataclass(frozen=True)
class _Analyte:
    """One compiled ``analytes`` entry of the resource."""

    reading: re.Pattern[str]  # gap, comparator, value(s) and unit, matched where a name ends
    kinds: tuple[str, ...]
    units: tuple[tuple[str, re.Pattern[str]], ...]
    bare_units: tuple[str, ...]
    comparators: bool
    first_exceeds_second: bool
    methods: tuple[tuple[str, re.Pattern[str]], ...]
    serum_only: bool


def _alternation(patterns: list[str]) -> str:
    return "|".join(f"(?:{p})" for p in sorted(patterns, key=len, reverse=True))


def _words(patterns: list[str]) -> str:
    return rf"(?<![^\W\d_])(?:{_alternation(patterns)}){_NOT_LETTER}"


def _lead_letter(pattern: str) -> str | None:
    """The letter every match of ``pattern`` starts with, when the pattern plainly says so."""
    if not (pattern[:1].isascii() and pattern[:1].isalpha()) or pattern[1:2] in ("?", "*", "{"):
        return None
    depth, escaped, in_class = 0, False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and depth == 0:
            return None
    return pattern[0].lower()


def _by_lead_letter(patterns: list[str]) -> str:
    """``patterns`` as one alternation that tries only those starting with the letter at hand."""
    by_letter: dict[str | None, list[str]] = {}
    for pattern in patterns:
        by_letter.setdefault(_lead_letter(pattern), []).append(pattern)
    return "|".join(
        f"(?={letter})(?:{_alternation(group)})" if letter else f"(?:{_alternation(group)})"
        for letter, group in sorted(by_letter.items(), key=lambda item: item[0] or "")
    )


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ResourceError(f"resource 'measurements' has a bad pattern ({exc}): {pattern[:120]}") from exc


def _uncaptured(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


def _last_break(breaks: re.Pattern[str], text: str, lo: int, hi: int) -> int:
    start = lo
    for m in breaks.finditer(text, lo, hi):
        start = m.end()
    return start


class MeasurementFinder:
    """Finds vitals and lab values in text with the rules of ``measurements.json``."""

    def __init__(self, rules: resources.MeasurementRules, relatives: list[str]) -> None:
        """Compile ``rules``; ``relatives`` are the family words that make a reading someone else's."""
        self._kinds = rules.kinds
        self._panels = rules.panels
        when_any = _alternation([*rules.when_dates, *rules.when_words, *rules.when_partial])
        when_safe = _alternation([*rules.when_dates, *rules.when_words])
        when_partial = _alternation(rules.when_partial)
        preps = _alternation(rules.when_prepositions)
        gap_token = "|".join(
            [
                rf"(?:{_alternation(rules.gap_words)}){_NOT_LETTER}",
                rf"\((?:{when_any})\)",
                _BRACKETED_WORDS,
                rf"(?:(?:{preps}){_BLANK}+)?(?:{when_any}){_NOT_LETTER}",
                r"[:=~]",
                rf"-(?={_BLANK})",
            ]
        )
        gap = rf"(?:{_BLANK}*+(?:{gap_token}))*{_BLANK}*+"  # possessive: no token starts with a blank
        self._analytes = {
            name: self._compile_analyte(name, spec, rules, gap) for name, spec in rules.analytes.items()
        }
        # each name pattern, filed under the letter it starts with (None: any letter)
        names_by_letter: dict[str | None, list[tuple[_Analyte, re.Pattern[str]]]] = {}
        for name, spec in rules.analytes.items():
            for pattern in spec.names:
                names_by_letter.setdefault(_lead_letter(pattern), []).append(
                    (self._analytes[name], _compile(rf"(?:{pattern}){_NOT_LETTER}"))
                )
        any_letter = names_by_letter.pop(None, [])
        self._names_by_letter = {letter: [*names, *any_letter] for letter, names in names_by_letter.items()}
        self._names_any_letter = any_letter
        standalone = [
            rf"(?P<s_{name}>(?:{'|'.join(_uncaptured(rules.value_patterns[v]) for v in spec.values)})"
            rf"{_BLANK}*(?:{spec.standalone_unit}){_NOT_LETTER})"
            for name, spec in rules.analytes.items()
            if spec.standalone_unit
        ]
        every_name = [n for spec in rules.analytes.values() for n in spec.names]
        alternatives = "|".join(
            [
                rf"(?P<not_name>{_alternation(rules.not_names)}){_NOT_LETTER}",
                rf"(?P<name>{_by_lead_letter(every_name)}){_NOT_LETTER}",
                rf"(?=\d)(?:{'|'.join(standalone)})" if standalone else "(?!)",
            ]
        )
        # a name or value starts a word, not after "non-" or "BUN/"; testing that first is fast
        self._scan = _compile(rf"(?=[^\W_])(?<![\w/-])(?:{alternatives})")
        self._flag = _compile(rf"{_BLANK}*(?:{_alternation(rules.flags)})")
        self._veto = _compile(_alternation(rules.value_vetoes))
        self._when_in_gap = _compile(rf"(?<![\w/])(?:{when_any})")
        self._when_after = _compile(
            rf"{_BLANK}*[,-]?{_BLANK}*(?:(?:{preps}){_BLANK}+)?(?P<when>{when_safe}){_NOT_LETTER}"
            rf"|{_BLANK}*[,-]?{_BLANK}*\({_BLANK}*(?:(?:{preps}){_BLANK}+)?(?P<bracketed>{when_any}){_BLANK}*\)"
            rf"|{_BLANK}*[,-]?{_BLANK}*(?:{preps}){_BLANK}+(?P<partial>{when_partial}){_NOT_LETTER}"
        )
        self._when_before = _compile(rf"(?<![\w/])(?P<when>{when_any})(?:'s|’s)?{_BLANK}+$")
        self._reference = _compile(_words(rules.reference_cues))
        self._someone_else = _compile(_words([*(re.escape(r) for r in relatives), *rules.subject_cues]))
        self._other_specimen = _compile(_words(rules.specimen_cues))

    @classmethod
    def from_resources(cls) -> "MeasurementFinder":
        """The finder for the shipped ``measurements.json`` and the family words of ``relationships.json``."""
        return cls(resources.load("measurements"), list(resources.load("relationships").relationships))

    @staticmethod
    def _compile_analyte(
        name: str, spec: resources.MeasurementAnalyte, rules: resources.MeasurementRules, gap: str
    ) -> _Analyte:
        shapes = [rules.value_patterns[v] for v in spec.values]
        if any("(?P<value2>" in s for s in shapes) != (len(spec.kinds) == 2) or not 1 <= len(spec.kinds) <= 2:
            raise ResourceError(f"measurements analyte {name}: a ratio value needs two kinds, a number one")
        if not all(any(f"(?P<{g}>" in s for g in ("value", *_COMPOUND)) for s in shapes):
            raise ResourceError(f"measurements analyte {name}: every value pattern needs a value group")
        unit_patterns = [p for code in spec.units for p in rules.units[code]]
        unit = rf"(?:{_BLANK}*(?P<unit>{_alternation(unit_patterns)}){_NOT_LETTER})?"
        for large in _COMPOUND:
            if any(f"(?P<{large}>" in shape for shape in shapes):
                unit = rf"(?({large})|{unit})"
        return _Analyte(
            reading=_compile(rf"{gap}{_COMPARATOR}(?P<reading>{'|'.join(shapes)}){unit}"),
            kinds=tuple(spec.kinds),
            units=tuple((code, _compile(p)) for code in spec.units for p in rules.units[code]),
            bare_units=tuple(spec.bare_units),
            comparators=spec.comparators,
            first_exceeds_second=spec.first_exceeds_second,
            methods=tuple((method, _compile(p)) for method, p in spec.methods.items()),
            serum_only=spec.serum_only,
        )

    def find(self, text: str) -> list[Measurement]:
        """Every plausible reading of the patient in ``text``, in text order.

        Args:
            text: Note text (any length; nothing is changed or copied).

        Returns:
            The measurements, systolic before diastolic for a blood pressure.
        """
        found: list[Measurement] = []
        pos = 0
        while m := self._scan.search(text, pos):
            start, group = m.start(), m.lastgroup or ""
            if group == "not_name":
                pos = m.end()
                continue
            if group.startswith("s_"):
                if text[start - 1 : start] == ".":  # "1.152/94 mmHg" is no reading
                    pos = m.end()
                    continue
                analyte = self._analytes[group[2:]]
                reading = analyte.reading.match(text, start)
                if reading is None or reading.start("reading") != start or not reading["unit"]:
                    pos = m.end()
                    continue
                if _COMPARATOR_BEFORE.search(text, max(0, start - 3), start):
                    pos = reading.end()
                    continue
                name_end = start
            else:
                hit = self._name_at(text, start)
                if hit is None:
                    pos = m.end()
                    continue
                analyte, name_end, reading = hit
            pos = reading.end()
            found.extend(self._read(text, analyte, start, name_end, reading))
        return found

    def _name_at(self, text: str, start: int) -> tuple[_Analyte, int, re.Match[str]] | None:
        """The longest name at ``start`` that a reading follows, with that reading."""
        candidates = self._names_by_letter.get(text[start].lower(), self._names_any_letter)
        names = [(nm.end(), analyte) for analyte, p in candidates if (nm := p.match(text, start))]
        for name_end, analyte in sorted(names, key=lambda pair: -pair[0]):
            if reading := analyte.reading.match(text, name_end):
                return analyte, name_end, reading
        return None

    def _read(
        self, text: str, analyte: _Analyte, start: int, name_end: int, reading: re.Match[str]
    ) -> list[Measurement]:
        comparator = reading["cmp"]
        if comparator and not analyte.comparators:
            return []
        groups = reading.groupdict()
        reading_start, reading_end = reading.span("reading")
        compound = next((large for large in _COMPOUND if groups.get(large) is not None), None)
        if compound is not None:
            small, large_factor, small_factor, compound_unit = _COMPOUND[compound]
            value = float(groups[compound]) * large_factor + float(groups.get(small) or 0) * small_factor
            values = [(value, reading_start, reading_end)]
            units, end = [compound_unit], reading_end
        else:
            values = [(float(reading["value"]), *reading.span("value"))]
            if groups.get("value2") is not None:
                values.append((float(reading["value2"]), *reading.span("value2")))
            if reading["unit"]:
                units = [code for code, p in analyte.units if p.fullmatch(reading["unit"])][:1]
                end = reading.end("unit")
            else:
                if not self._flag.match(text, reading_end) and self._veto.match(text, reading_end):
                    return []
                units, end = list(analyte.bare_units), reading_end
        unit = next((u for u in units if self._plausible(analyte, values, u)), None)
        if unit is None:
            return []
        if analyte.first_exceeds_second and values[0][0] <= values[1][0]:
            return []
        value_start = reading.start("cmp") if comparator else reading_start
        if self._is_not_the_patients_reading(text, analyte, start, value_start):
            return []
        when = self._when(text, start, name_end, value_start, end)
        methods = self._methods(text, analyte, start, reading_start, end)
        measurements = []
        for kind, (value, v_start, v_end) in zip(analyte.kinds, values, strict=False):
            spec = self._kinds[kind]
            coding = next(
                c
                for c in spec.codings
                if (c.unit is None or c.unit == unit) and (c.method is None or c.method in methods)
            )
            panel = self._panels[spec.panel] if spec.panel else None
            measurements.append(
                Measurement(
                    kind=kind,
                    value=value,
                    unit=unit,
                    loinc=coding.code,
                    display=coding.display,
                    start=start,
                    end=end,
                    value_start=v_start,
                    value_end=v_end,
                    text=text[start:end],
                    when=when,
                    comparator=comparator,
                    panel_loinc=panel.code if panel else None,
                    panel_display=panel.display if panel else None,
                )
            )
        return measurements

    def _plausible(self, analyte: _Analyte, values: list[tuple[float, int, int]], unit: str) -> bool:
        for kind, (value, _, _) in zip(analyte.kinds, values, strict=False):
            low_high = self._kinds[kind].ranges.get(unit)
            if low_high is None or not low_high[0] <= value <= low_high[1]:
                return False
        return True

    def _is_not_the_patients_reading(
        self, text: str, analyte: _Analyte, start: int, value_start: int
    ) -> bool:
        """A goal or reference range, someone else's reading, or one in another body fluid."""
        lookback = max(0, start - _CONTEXT_CHARS)
        clause = _last_break(_CLAUSE_BREAK, text, lookback, start)
        if self._reference.search(text, clause, value_start) or self._someone_else.search(
            text, clause, value_start
        ):
            return True
        if not analyte.serum_only:
            return False
        sentence = _last_break(_SENTENCE_BREAK, text, lookback, start)  # "CSF: protein 88, glucose 78"
        return self._other_specimen.search(text, sentence, value_start) is not None

    def _when(self, text: str, start: int, name_end: int, value_start: int, end: int) -> str | None:
        if m := self._when_in_gap.search(text, name_end, value_start):
            return m.group()
        after = end
        if flag := self._flag.match(text, after):
            after = flag.end()
        if m := self._when_after.match(text, after):
            return m["when"] or m["bracketed"] or m["partial"]
        line_start = text.rfind("\n", 0, start) + 1
        if m := self._when_before.search(text, max(line_start, start - _WHEN_BEFORE_CHARS), start):
            return m["when"]
        return None

    @staticmethod
    def _methods(text: str, analyte: _Analyte, start: int, reading_start: int, end: int) -> set[str]:
        if not analyte.methods:
            return set()
        after_end = min(len(text), end + _METHOD_AFTER_CHARS)
        if stop := _METHOD_AFTER_STOP.search(text, end, after_end):
            after_end = stop.start()
        written = f"{text[start:reading_start]} {text[end:after_end]}"
        return {method for method, pattern in analyte.methods if pattern.search(written)}


@functools.cache
def default_finder() -> MeasurementFinder:
    """The shipped finder, compiled once per process."""
    return MeasurementFinder.from_resources()


def find_measurements(text: str) -> list[Measurement]:
    """Vitals and labs of the patient written in ``text`` (see :class:`MeasurementFinder`).

    Args:
        text: Note text.

    Returns:
        One :class:`Measurement` per value, in text order ("BP 152/94" gives two).
    """
    return default_finder().find(text)
