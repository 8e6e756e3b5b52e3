"""medspaCy's rule matcher run over chosen token windows instead of the whole Doc.

medspaCy components (ConText, the Sectionizer) match every rule over the whole Doc and then
discard what cannot matter: a ConText cue outside a mention's sentence, a section header that
does not start a line. Matching only the windows that can matter gives the same matches at a
fraction of the cost on long notes. medspaCy keeps its three matchers in private attributes;
medspaCy is pinned (1.3.1). spaCy's ``Matcher`` returns offsets relative to a Span, its
``PhraseMatcher`` relative to the Doc.
"""

from collections.abc import Callable

from medspacy.common.medspacy_matcher import MedspacyMatcher
from spacy.strings import get_string_id
from spacy.tokens import Doc

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
        self._token = matcher._MedspacyMatcher__matcher  # type: ignore[attr-defined]
        self._phrase = matcher._MedspacyMatcher__phrase_matcher  # type: ignore[attr-defined]
        self._regex = matcher._MedspacyMatcher__regex_matcher  # type: ignore[attr-defined]
        # match id -> the mention labels its rule may modify (none given, as a sectionizer's: any)
        self._labels: dict[int, Labels] = {
            get_string_id(rule_id): (
                frozenset(getattr(rule, "allowed_types", None) or ()) or None,
                frozenset(getattr(rule, "excluded_types", None) or ()) or None,
            )
            for rule_id, rule in matcher.rule_map.items()
        }

    def __call__(self, doc: Doc) -> list[Match]:
        windows = self._windows(doc) if len(doc) else []
        matches: list[Match] = []
        for start, end in windows:
            window = doc[start:end]
            for m, s, e in self._token(window):
                if not self._anchored or s == 0:
                    matches.append((m, s + start, e + start))
            matches += [(m, s, e) for m, s, e in self._phrase(window) if not self._anchored or s == start]
        if self._regex._patterns:
            matches += [m for m in self._regex(doc) if any(self._inside(m[1], w) for w in windows)]
        if self._avoid is not None:
            avoided = {i for start, end in self._avoid(doc) for i in range(start, end)}
            matches = [m for m in matches if avoided.isdisjoint(range(m[1], m[2]))]
        if not self._prune:
            return sorted(matches, key=lambda m: m[1:])
        return keep_longest(matches, lambda a, b: _share_a_label(self._labels[a], self._labels[b]))

    def everywhere(self) -> "WindowedMatcher | MedspacyMatcher":
        """The same matching without the windows: the whole Doc is one window (for equivalence tests).

        An anchored matcher's windows are its only filter, so its equivalent is the full matcher.
        """
        if self._anchored:
            return self.full
        return WindowedMatcher(self.full, lambda doc: [(0, len(doc))], anchored=False, avoid=self._avoid)

    def _inside(self, i: int, window: tuple[int, int]) -> bool:
        return i == window[0] if self._anchored else window[0] <= i < window[1]


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


def _share_a_label(a: Labels, b: Labels) -> bool:
    """Whether two rules, given as allowed and excluded labels, may modify a mention of one label."""
    (a_allowed, a_excluded), (b_allowed, b_excluded) = a, b
    if a_allowed is not None and b_allowed is not None:
        return bool(a_allowed & b_allowed)
    if a_allowed is not None:
        return bool(a_allowed - (b_excluded or frozenset()))
    if b_allowed is not None:
        return bool(b_allowed - (a_excluded or frozenset()))
    return True
