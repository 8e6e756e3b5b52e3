"""Sentence splitting for clinical text: lines, lists, headers and prose.

A rule splitter instead of PyRuSH, which the project's feasibility spike measured at about
130 ms per 400-word note (``../shared/research/spike-findings.md`` §1). It starts a sentence

* at a new line, unless the line break is a soft wrap inside prose (the previous line does not
  end in punctuation and the next line starts with a lower-case word);
* after ``.``, ``!`` or ``?`` when the next word starts with a capital, a digit or a bullet.

Abbreviations with a full stop (``Dr.``, ``b.i.d.``, ``vs.``) are single tokens (see
:mod:`nlp.components.tokenizer`), so they never end a sentence.
"""

import numpy
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Token

_FINAL = {".", "!", "?"}
_BULLETS = {"-", "*", "•", "·", "o", "+", "#"}


def _starts_sentence(token: Token) -> bool:
    text = token.text
    return text[:1].isupper() or text[:1].isdigit() or text in _BULLETS or not text[:1].isalpha()


def _is_list_marker(doc: Doc, sent_start: int, stop: int) -> bool:
    """``1.`` or ``a.`` opening a line: the full stop numbers a list item, it ends nothing."""
    head = doc[sent_start]
    return stop == sent_start + 1 and (head.like_num or (len(head.text) == 1 and head.is_alpha))


def split_sentences(doc: Doc) -> Doc:
    """Set ``is_sent_start`` on every token of ``doc``."""
    n = len(doc)
    if n == 0:
        return doc
    starts = [False] * n
    starts[0] = True
    sent_start = 0
    prev_content: Token | None = None  # last non-space token
    newline_run = ""  # whitespace seen since prev_content
    for i, token in enumerate(doc):
        if token.is_space:
            newline_run += token.text
            continue
        if prev_content is not None:
            gap = newline_run + prev_content.whitespace_
            breaks = gap.count("\n")
            if breaks:
                soft_wrap = (
                    breaks == 1 and not prev_content.is_punct and token.text[:1].islower() and token.is_alpha
                )
                starts[i] = not soft_wrap
            elif (
                prev_content.text in _FINAL
                and _starts_sentence(token)
                and not _is_list_marker(doc, sent_start, prev_content.i)
            ):
                starts[i] = True
        if starts[i]:
            sent_start = i
        prev_content = token
        newline_run = ""
    # one array write: setting token.is_sent_start checks the whole Doc's annotation each time
    flags = numpy.array([1 if s else -1 for s in starts], dtype="int64").astype("uint64")
    doc.from_array([SENT_START], flags.reshape((n, 1)))  # type: ignore[arg-type]
    return doc


@Language.factory("clinical_sentences", assigns=["token.is_sent_start"])
def make_clinical_sentences(nlp: Language, name: str) -> object:
    return split_sentences


def sentence_ends(doc: Doc) -> list[int]:
    """For every token, the character offset where its sentence ends.

    ``span.sent`` rescans the whole Doc on each call; components that need the sentence of
    many mentions read this table once per Doc instead.
    """
    ends = [0] * len(doc)
    for sent in doc.sents:
        for i in range(sent.start, sent.end):
            ends[i] = sent.end_char
    return ends
