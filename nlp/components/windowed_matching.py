"""medspaCy's rule matcher run over chosen token windows instead of the whole Doc.

medspaCy components (ConText, the Sectionizer) match every rule over the whole Doc and then
discard what cannot matter: a ConText cue outside a mention's sentence, a section header that
does not start a line. Matching only the windows that can matter gives the same matches at a
fraction of the cost on long notes. medspaCy keeps its three matchers in private attributes;
medspaCy is pinned (1.3.1). spaCy's ``Matcher`` returns offsets relative to a Span, its
``PhraseMatcher`` relative to the Doc.

A rule of one token given by a regular expression ("2015", "HD4") is matched here, not by spaCy's
``Matcher``: the ``Matcher`` calls a Python predicate for every rule whose first token has one, at
every token, where this tests each distinct word of a Doc once and remembers the answer. A rule of
plain lower-case words goes to a ``PhraseMatcher``.
"""

import re
from collections.abc import Callable
from typing import Any

import numpy as np
from medspacy.common.medspacy_matcher import MedspacyMatcher
from spacy.attrs import LOWER, ORTH
from spacy.matcher import Matcher, PhraseMatcher
from spacy.strings import StringStore, get_string_id
from spacy.tokens import Doc
from spacy.vocab import Vocab

Match = tuple[int, int, int]
Labels = tuple[frozenset[str] | None, frozenset[str] | None]  # a rule's allowed and excluded labels


class WindowedMatcher:
    """A drop-in for a ``MedspacyMatcher`` that matches inside ``windows(doc)`` only.

    Args:
        matcher: the medspaCy matcher whose rules to use (kept as ``full``).
        windows: token ranges ``(start, end)`` to match in.
        anchored: keep only matches that begin where their window begins.
        avoid: token ranges no match may overlap (dropped before overlaps are pruned, so a
            shorter match they hid comes back).
    """

    def __init__(
        self,
        matcher: MedspacyMatcher,
        windows: Callable[[Doc], list[tuple[int, int]]],
        anchored: bool,
        avoid: Callable[[Doc], list[tuple[int, int]]] | None = None,
    ) -> None:
        self.full = matcher  # the unrestricted matcher
        self._avoid = avoid
        self.rule_map = matcher.rule_map
        self._windows = windows
        self._anchored = anchored
        self._prune = matcher._prune
        token = matcher._MedspacyMatcher__matcher  # type: ignore[attr-defined]
        self._token, self._token_regexes, self._words = _split_rules(
            token, list(matcher.rule_map), token.vocab
        )
        self._phrase = matcher._MedspacyMatcher__phrase_matcher  # type: ignore[attr-defined]
        self._regex = matcher._MedspacyMatcher__regex_matcher  # type: ignore[attr-defined]
        # match id -> the mention labels its rule may modify (none given, as a sectionizer's: any)
        self.labels: dict[int, Labels] = {
            get_string_id(rule_id): (
                frozenset(getattr(rule, "allowed_types", None) or ()) or None,
                frozenset(getattr(rule, "excluded_types", None) or ()) or None,
            )
            for rule_id, rule in matcher.rule_map.items()
        }

    def __call__(self, doc: Doc, windows: list[tuple[int, int]] | None = None) -> list[Match]:
        """Matches inside ``windows`` (default: ``windows(doc)`` of the constructor)."""
        if windows is None:
            windows = self._windows(doc) if len(doc) else []
        matches: list[Match] = []
        for start, end in windows:
            window = doc[start:end]
            for m, s, e in self._token(window):
                if not self._anchored or s == 0:
                    matches.append((m, s + start, e + start))
            matches += [(m, s, e) for m, s, e in self._phrase(window) if not self._anchored or s == start]
            if self._words is not None:
                matches += [(m, s, e) for m, s, e in self._words(window) if not self._anchored or s == start]
        if self._token_regexes and windows:
            for match_id, i in self._regex_tokens(doc, windows):
                if not self._anchored or any(i == w[0] for w in windows):
                    matches.append((match_id, i, i + 1))
        if self._regex._patterns:
            matches += [m for m in self._regex(doc) if any(self._inside(m[1], w) for w in windows)]
        if self._avoid is not None:
            avoided = {i for start, end in self._avoid(doc) for i in range(start, end)}
            matches = [m for m in matches if avoided.isdisjoint(range(m[1], m[2]))]
        if not self._prune:
            return sorted(matches, key=lambda m: m[1:])
        return keep_longest(matches, lambda a, b: share_a_label(self.labels[a], self.labels[b]))

    def everywhere(self) -> "WindowedMatcher | MedspacyMatcher":
        """The same matching without the windows: the whole Doc is one window, whatever windows a
        call gives (for equivalence tests).

        An anchored matcher's windows are its only filter, so its equivalent is the full matcher.
        """
        if self._anchored:
            return self.full
        return _Everywhere(self.full, _whole, anchored=False, avoid=self._avoid)

    def _inside(self, i: int, window: tuple[int, int]) -> bool:
        return i == window[0] if self._anchored else window[0] <= i < window[1]

    def _regex_tokens(self, doc: Doc, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """``(match id, token index)`` of every token inside ``windows`` a one-token regex rule matches."""
        inside = np.concatenate([np.arange(start, end) for start, end in windows])
        found: list[tuple[int, int]] = []
        for attr, rules in self._token_regexes.items():
            values = doc.to_array(attr)[inside]
            words = set(np.unique(values).tolist())
            for rule in rules:
                hits = rule.matching(words, doc.vocab.strings)
                if hits:
                    found += [(rule.match_id, int(i)) for i in inside[np.isin(values, list(hits))]]
        return found


class TokenRegex:
    """A one-token rule given by a regex (spaCy's ``search`` of the token's string), tested once per
    distinct word: the words seen and those that match are remembered by hash."""

    MAX_SEEN = 1_000_000  # then forget, as a long-running service meets ever more words

    def __init__(self, match_id: int, regex: str) -> None:
        self.match_id = match_id
        self._regex = re.compile(regex)
        self._seen: set[int] = set()
        self._matching: set[int] = set()

    def matching(self, words: set[int], strings: StringStore) -> set[int]:
        """The words (hashes) of ``words`` that match."""
        new = words - self._seen
        if new:
            if len(self._seen) > self.MAX_SEEN:
                self._seen.clear()
                self._matching.clear()
            self._seen |= new
            self._matching |= {word for word in new if self._regex.search(strings[word])}
        return self._matching & words


class _Everywhere(WindowedMatcher):
    def __call__(self, doc: Doc, windows: list[tuple[int, int]] | None = None) -> list[Match]:
        return super().__call__(doc, _whole(doc))


def _whole(doc: Doc) -> list[tuple[int, int]]:
    return [(0, len(doc))]


TokenRegexes = dict[int, list[TokenRegex]]  # by the attribute they test (ORTH, LOWER)


def _split_rules(
    matcher: Matcher, keys: list[str], vocab: Vocab
) -> tuple[Matcher, TokenRegexes, PhraseMatcher | None]:
    """A copy of ``matcher`` without the rules that need no ``Matcher``: its one-token regex rules,
    as :class:`TokenRegex`, and its rules of plain lower-case words, as a ``PhraseMatcher`` on
    ``LOWER`` (one hash lookup per token instead of one test per rule; medspaCy makes such rules of
    a phrase the tokenizer splits differently in capitals, "CANNOT be excluded").

    A rule qualifies when each of its patterns is one token with one ``REGEX`` on ``TEXT``/``ORTH``
    or ``LOWER``, or when each is a sequence of ``{"LOWER": word}`` tokens. The returned matcher
    is ``matcher`` itself when no rule qualifies.
    """
    regexes: TokenRegexes = {}
    words = PhraseMatcher(vocab, attr="LOWER")
    rest: list[tuple[str, list, Any]] = []
    for key in keys:
        if key not in matcher:
            continue
        on_match, patterns = matcher.get(key)
        tests = [_token_regex(pattern) for pattern in patterns]
        if on_match is None and all(t is not None for t in tests):
            for attr, regex in tests:  # type: ignore[misc]
                regexes.setdefault(attr, []).append(TokenRegex(get_string_id(key), regex))
        elif on_match is None and all(_lower_words(pattern) for pattern in patterns):
            words.add(key, [Doc(vocab, words=_lower_words(pattern)) for pattern in patterns], on_match=None)
        else:
            rest.append((key, patterns, on_match))
    if not regexes and not len(words):
        return matcher, {}, None
    kept = Matcher(vocab)
    for key, patterns, on_match in rest:
        kept.add(key, patterns, on_match=on_match)
    return kept, regexes, words if len(words) else None


def _lower_words(pattern: list[dict]) -> list[str]:
    """The words of a pattern that is nothing but ``{"LOWER": word}`` tokens, else ``[]``."""
    words = []
    for token in pattern:
        word = token.get("LOWER")
        if len(token) != 1 or not isinstance(word, str) or not word or word != word.lower():
            return []
        words.append(word)
    return words


def _token_regex(pattern: list[dict]) -> tuple[int, str] | None:
    """``(attribute, regex)`` when ``pattern`` is one token given by one regex, else None."""
    if len(pattern) != 1 or len(pattern[0]) != 1:
        return None
    ((name, value),) = pattern[0].items()
    attr = {"TEXT": ORTH, "ORTH": ORTH, "LOWER": LOWER}.get(name)
    if attr is None or not isinstance(value, dict) or set(value) != {"REGEX"}:
        return None
    return attr, value["REGEX"]


def keep_longest(matches: list[Match], rivals: Callable[[int, int], bool] | None = None) -> list[Match]:
    """Drop every match that overlaps a longer rival; matches of the same extent all stay.

    medspaCy keeps one of two matches with the same extent, whichever sorts first; keeping both
    lets two rules share a wording when they apply to different mention labels. ``rivals(a, b)``
    says whether the rules of match ids ``a`` and ``b`` compete (default: all do); ConText's rules
    compete only when they may modify a mention of the same label, so "was treated with" (a drug's
    cue) does not hide "was treated" (a problem's) in "UTI was treated with nitrofurantoin".
    """
    ranked = sorted(set(matches), key=lambda m: (m[1] - m[2], m[1]))
    kept: list[Match] = []
    for match in ranked:
        match_id, start, end = match
        if all(
            (k[1], k[2]) == (start, end)
            or k[2] <= start
            or end <= k[1]
            or (rivals is not None and not rivals(k[0], match_id))
            for k in kept
        ):
            kept.append(match)
    return sorted(kept, key=lambda m: (m[1], m[2], m[0]))


def share_a_label(a: Labels, b: Labels) -> bool:
    """Whether two rules, given as allowed and excluded labels, may modify a mention of one label."""
    (a_allowed, a_excluded), (b_allowed, b_excluded) = a, b
    if a_allowed is not None and b_allowed is not None:
        return bool(a_allowed & b_allowed)
    if a_allowed is not None:
        return bool(a_allowed - (b_excluded or frozenset()))
    if b_allowed is not None:
        return bool(b_allowed - (a_excluded or frozenset()))
    return True
