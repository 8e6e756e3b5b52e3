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
from spacy.tokens import Doc

Match = tuple[int, int, int]


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
        return keep_longest(matches) if self._prune else sorted(matches, key=lambda m: m[1:])

    def everywhere(self) -> "WindowedMatcher | MedspacyMatcher":
        """The same matching without the windows: the whole Doc is one window (for equivalence tests).

        An anchored matcher's windows are its only filter, so its equivalent is the full matcher.
        """
        if self._anchored:
            return self.full
        return WindowedMatcher(self.full, lambda doc: [(0, len(doc))], anchored=False, avoid=self._avoid)

    def _inside(self, i: int, window: tuple[int, int]) -> bool:
        return i == window[0] if self._anchored else window[0] <= i < window[1]


def keep_longest(matches: list[Match]) -> list[Match]:
    """Drop every match that overlaps a longer one; matches of the same extent all stay.

    medspaCy keeps one of two matches with the same extent, whichever sorts first; keeping both
    lets two rules share a wording when they apply to different mention labels.
    """
    ranked = sorted(set(matches), key=lambda m: (m[1] - m[2], m[1]))
    kept: list[Match] = []
    taken: set[int] = set()
    for match in ranked:
        _, start, end = match
        same = [k for k in kept if (k[1], k[2]) == (start, end)]
        if same or not taken.intersection(range(start, end)):
            kept.append(match)
            taken.update(range(start, end))
    return sorted(kept, key=lambda m: (m[1], m[2], m[0]))
