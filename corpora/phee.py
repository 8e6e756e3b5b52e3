"""PHEE (Sun et al. 2022): pharmacovigilance events in case-report sentences, official train/dev/test.

Each JSON line is a sentence with events (``Adverse_event`` or ``Potential_therapeutic_event``). An event
has a ``Trigger`` and arguments, some with sub-arguments: ``Treatment`` (``Drug``, ``Disorder``, ``Route``,
``Dosage``, ``Freq``, ``Duration``, ``Time_elapsed``, ``Combination``), ``Subject`` (``Age``, ``Gender``,
``Population``, ``Race``, ``Disorder``), ``Effect``, and the attribute cues ``Negated``, ``Speculated`` and
``Severity`` (with a ``value``). Every argument is a list of entities, every entity a list of fragments.

Rows are sentences. Spans are entity fragments, labelled with the argument's path: ``Trigger``,
``Treatment``, ``Treatment.Drug``, ``Subject.Disorder``, ``Effect``, ``Negated``, ``Combination.Trigger``
... (identical fragments of one label are one span). Relations go from an event's trigger to each of its
arguments and from an argument to its sub-arguments (type = the tail's label, e.g. ``Treatment.Drug``),
and from a combination trigger to its drugs (``Combination.Drug``); a discontinuous entity is represented
by its first fragment, and ``meta["fragments"]`` lists the span indices of each discontinuous entity.

``meta["events"]`` keeps the event structure for evaluators::

    {"id": "E1", "type": "Adverse_event", "negated": false, "speculated": true, "severity": "High",
     "arguments": {"Trigger": [0], "Effect": [3], "Treatment.Drug": [5, 6], ...},
     "combinations": [{"Trigger": [7], "Drug": [5, 6]}]}

so "is this Effect span negated?" is ``any(i in e["arguments"]["Effect"] and e["negated"] for e in events)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corpora.base import (
    CorpusFormatError,
    CorpusSpec,
    check_span,
    register,
    relation,
    require_file,
    row,
    span,
)

NAME = "phee"
FILES = {"train": "train.json", "validation": "dev.json", "test": "test.json"}
ENTITY_KEYS = frozenset({"text", "start", "entity_id", "value"})
EVENT_TYPES = frozenset({"Adverse_event", "Potential_therapeutic_event"})


class Sentence:
    """Spans, relations and events of one sentence while it is being read."""

    def __init__(self, id_: str, text: str, where: str) -> None:
        self.id = id_
        self.text = text
        self.where = where
        self.spans: list[dict] = []
        self.relations: list[dict] = []
        self.events: list[dict[str, Any]] = []
        self.fragments: list[list[int]] = []
        self._span_index: dict[tuple[int, int, str], int] = {}
        self._entities: dict[tuple[str, str], list[int]] = {}  # (label, entity id) -> span indices
        self._relations: set[tuple[str, int, int]] = set()

    def entities(self, label: str, argument: dict[str, Any]) -> list[list[int]]:
        """Span indices of each entity of ``argument`` (one list of fragment spans per entity)."""
        where = f"{self.where} ({self.id}, {label})"
        try:
            triples = list(zip(argument["entity_id"], argument["text"], argument["start"], strict=True))
        except (KeyError, TypeError, ValueError) as err:
            raise CorpusFormatError(
                f"{where}: expected parallel entity_id/text/start lists ({err})"
            ) from None
        result = []
        for entity_id, texts, starts in triples:
            key = (label, entity_id)
            if key not in self._entities:
                if len(texts) != len(starts) or not texts:
                    raise CorpusFormatError(f"{where}: entity {entity_id} has {texts!r} at {starts!r}")
                indices = [
                    self._fragment(label, text, start, where)
                    for text, start in zip(texts, starts, strict=True)
                ]
                self._entities[key] = indices
                if len(indices) > 1:
                    self.fragments.append(indices)
            result.append(self._entities[key])
        return result

    def _fragment(self, label: str, text: str, start: int, where: str) -> int:
        check_span(self.text, start, start + len(text), text, where=where)
        key = (start, start + len(text), label)
        if key not in self._span_index:
            self._span_index[key] = len(self.spans)
            self.spans.append(span(self.text, *key, where=where))
        return self._span_index[key]

    def relate(self, heads: list[list[int]], tails: list[list[int]], type_: str) -> None:
        """One relation from each head entity's first fragment to each tail entity's first fragment."""
        for head in heads:
            for tail in tails:
                key = (type_, head[0], tail[0])
                if key not in self._relations:
                    self._relations.add(key)
                    self.relations.append(relation(type_, head[0], tail[0]))

    def add_event(self, event: dict[str, Any]) -> None:
        """Spans and relations of ``event``'s trigger and arguments, and its entry in ``events``."""
        where = f"{self.where} ({self.id}, event {event.get('event_id')})"
        if event.get("event_type") not in EVENT_TYPES or "Trigger" not in event:
            raise CorpusFormatError(f"{where}: expected an event_type in {sorted(EVENT_TYPES)} and a Trigger")
        arguments: dict[str, list[int]] = {}
        combinations: list[dict[str, list[int]]] = []

        def add(label: str, entities: list[list[int]]) -> None:
            arguments.setdefault(label, []).extend(i for entity in entities for i in entity)

        trigger = self.entities("Trigger", event["Trigger"])
        add("Trigger", trigger)
        for role, argument in event.items():
            if role in ("event_id", "event_type", "Trigger"):
                continue
            if not isinstance(argument, dict):
                raise CorpusFormatError(f"{where}: argument {role} is not an object")
            entities = self.entities(role, argument)
            add(role, entities)
            self.relate(trigger, entities, role)
            for sub_role, sub_argument in argument.items():
                if sub_role in ENTITY_KEYS:
                    continue
                if sub_role == "Combination":
                    for combination in sub_argument:
                        combination_trigger = self.entities("Combination.Trigger", combination["Trigger"])
                        drugs = self.entities(f"{role}.Drug", combination["Drug"])  # the same entities
                        self.relate(combination_trigger, drugs, "Combination.Drug")
                        combinations.append(
                            {
                                "Trigger": sorted({i for e in combination_trigger for i in e}),
                                "Drug": sorted({i for e in drugs for i in e}),
                            }
                        )
                    continue
                label = f"{role}.{sub_role}"
                sub_entities = self.entities(label, sub_argument)
                add(label, sub_entities)
                self.relate(entities, sub_entities, label)
        self.events.append(
            {
                "id": event.get("event_id", ""),
                "type": event["event_type"],
                "negated": bool(event.get("Negated", {}).get("value", False)),
                "speculated": bool(event.get("Speculated", {}).get("value", False)),
                "severity": event.get("Severity", {}).get("value"),
                "arguments": {label: sorted(set(indices)) for label, indices in arguments.items()},
                "combinations": combinations,
            }
        )

    def to_row(self) -> dict[str, Any]:
        pmid = self.id.partition("_")[0]
        return row(
            self.id,
            self.text,
            self.spans,
            self.relations,
            pmid=pmid,
            events=self.events,
            fragments=self.fragments,
        )


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Rows of one PHEE JSON-lines file."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.name}:{lineno}"
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            sentence = Sentence(record["id"], record["context"], where)
            events = [event for annotation in record["annotations"] for event in annotation["events"]]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CorpusFormatError(
                f"{where}: expected {{id, context, annotations: [{{events}}]}} ({err})"
            ) from None
        for event in events:
            try:
                sentence.add_event(event)
            except (KeyError, TypeError, AttributeError) as err:
                raise CorpusFormatError(f"{where}: malformed event in {sentence.id} ({err!r})") from None
        rows.append(sentence.to_row())
    return rows


def read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of PHEE by official split (``folder`` holds ``json/``; dev is ``validation``)."""
    return {
        split: read_json_lines(require_file(folder / "json" / name, NAME)) for split, name in FILES.items()
    }


SPEC = register(
    CorpusSpec(
        name=NAME,
        title="PHEE pharmacovigilance event extraction corpus",
        source="https://github.com/ZhaoyueSun/PHEE",
        licence="MIT (repository LICENSE); cite Sun et al., EMNLP 2022",
        reader=read,
        label_map={
            "Treatment.Drug": "DRUG",
            "Effect": "PROBLEM",
            "Treatment.Disorder": "PROBLEM",
            "Subject.Disorder": "PROBLEM",
        },
        annotated=frozenset(),
    )
)
