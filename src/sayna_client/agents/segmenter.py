"""Cut a stream of text pieces (LLM tokens) into chunks worth one ``speak`` each.

Pure and synchronous: :class:`SentenceSegmenter` takes pieces with :meth:`push` and
returns the chunks that are complete; :meth:`finish` returns the rest. No I/O, no clock.

A chunk ends at a sentence boundary (``.``, ``!``, ``?``, ``…`` or a blank line,
followed by whitespace; ``。``, ``！``, ``？`` followed by any character) once it holds at
least ``min_chars`` characters; the first chunk ends at the first sentence boundary
whatever its length, so speech starts as soon as possible. A chunk that grows past
``max_chars`` without a sentence boundary is cut at its last clause boundary (``,``
``;`` ``:`` or a dash, followed by whitespace; ``，`` ``、`` ``；`` ``：``), else at its
last space, else, in text written without spaces (Chinese, Japanese), at ``max_chars``;
one word longer than ``max_chars`` is cut after it, or after its first
:data:`~sayna_client._config.MAX_TEXT_CHARS` characters (100,000) when it is longer than
that: no chunk is longer than ``speak()`` accepts.
A ``.`` is not a boundary inside a number (``3.14``), after a known abbreviation
(``Dr.``, ``e.g.``, ``etc.``) or an initial (``J.``), after a list item's number at the
start of a line (``1. Open the app``: it belongs to the sentence after it), or inside a
URL or an e-mail address: a boundary needs the whitespace after it, so a cut never
waits for more than the next piece.

The work of a :meth:`~SentenceSegmenter.push` is about the size of the piece, not of the
text held: the scan for boundaries resumes where the last one stopped, so text that
cannot be cut yet (a long run without a boundary) is not read again at each piece.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Optional

from .._config import MAX_TEXT_CHARS
from ..errors import SaynaValidationError

__all__ = ["DEFAULT_ABBREVIATIONS", "SentenceSegmenter"]

#: Words ending in ``.`` that do not end a sentence (compared lower-cased, without the dot).
DEFAULT_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e",
        "cf", "approx", "inc", "ltd", "co", "corp", "no", "nos", "fig", "vol", "dept", "est",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "a.m", "p.m", "u.s", "u.k", "ph.d", "min", "max", "sec", "ave", "rd", "gen", "col",
        "capt", "lt", "sgt", "rev", "hon", "gov", "sen", "rep", "al",
    }
)  # fmt: skip

#: Closing quotes and brackets that stay with the punctuation before them.
_CLOSERS = "\"'”’)\\]」』）"
_SENTENCE_END = re.compile(
    rf"[.!?…]+[{_CLOSERS}]*(?=\s)"
    # Chinese and Japanese full stops need no space after them, only the next character
    # (so that closing brackets stay with them).
    rf"|[。！？]+[{_CLOSERS}]*(?=[^{_CLOSERS}])"
    r"|\n[ \t]*\n"
)
_CLAUSE_END = re.compile(
    rf"(?:[,;:]|\s[-–—]{{1,2}})[{_CLOSERS}]*(?=\s)|[，、；：][{_CLOSERS}]*(?=[^{_CLOSERS}])"
)
#: Scripts written without spaces between words (CJK ideographs, kana, hangul): a
#: run of them may be cut anywhere.
_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_URLISH = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.|@)", re.IGNORECASE)
#: What a :data:`_SENTENCE_END` match is made of: a match that more text could still make
#: (one that reached the end of the text) lies in a run of these at the end of the text.
_BOUNDARY_CHARS = frozenset(".!?…。！？" + _CLOSERS + " \t\n")
_NON_SPACE = re.compile(r"\S")


class SentenceSegmenter:
    """Incremental sentence/clause segmenter (see the module docstring).

    Args:
        min_chars: a sentence boundary ends a chunk (after the first) only when the chunk
            holds at least this many characters; shorter sentences are joined to the next.
        max_chars: longest chunk: past it the text is cut at a clause boundary or a space
            (a single word longer than this is not split, unless it is longer than
            ``speak()`` accepts, 100,000 characters).
        abbreviations: words that do not end a sentence with their ``.`` (a collection
            of words, such as ``{"dr", "approx"}``).

    Raises:
        SaynaValidationError: ``min_chars`` negative, ``max_chars`` below 10, below
            ``min_chars`` or above 100,000 (``speak()`` would refuse such chunks), or
            ``abbreviations`` one string.
    """

    def __init__(
        self,
        min_chars: int = 20,
        max_chars: int = 250,
        abbreviations: Optional[Iterable[str]] = None,
    ) -> None:
        if type(min_chars) is not int or min_chars < 0:
            raise SaynaValidationError("min_chars must be a whole number >= 0, e.g. 20")
        if type(max_chars) is not int or not max(10, min_chars) <= max_chars <= MAX_TEXT_CHARS:
            raise SaynaValidationError(
                f"max_chars must be a whole number >= 10 and >= min_chars, and at most "
                f"{MAX_TEXT_CHARS} (what speak() accepts), e.g. 250"
            )
        self.min_chars = min_chars
        self.max_chars = max_chars
        if isinstance(abbreviations, str):
            raise SaynaValidationError(
                "abbreviations is a collection of words, e.g. {'dr', 'approx'}, not one string"
            )
        self.abbreviations = (
            DEFAULT_ABBREVIATIONS
            if abbreviations is None
            else frozenset(a.lower().rstrip(".") for a in abbreviations)
        )
        self._buffer = ""
        self._emitted = 0
        # The scan's state (see _rescan).
        self._scan = 0
        self._tail = 0
        self._space_from: Optional[int] = None

    def push(self, piece: str) -> list[str]:
        """Add ``piece``; return the chunks now complete (stripped, non-empty), in order.

        Raises:
            SaynaValidationError: ``piece`` is not a string.
        """
        if not isinstance(piece, str):
            raise SaynaValidationError(f"text pieces must be str, got {type(piece).__name__}")
        held = len(self._buffer)
        self._buffer += piece
        self._tail = _boundary_run(self._buffer, held, self._tail)
        chunks: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                return chunks
            chunk, rest = self._buffer[:cut].strip(), self._buffer[cut:].lstrip()
            self._rescan(rest)
            if chunk:
                chunks.append(chunk)
                self._emitted += 1

    def finish(self) -> list[str]:
        """End of the text: return what is left (at most ``max_chars`` a chunk), and reset."""
        chunks: list[str] = []
        rest = self._buffer.strip()
        while len(rest) > self.max_chars:
            cut = self._long_cut(rest) or len(rest)
            chunks.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        if rest:
            chunks.append(rest)
        self.reset()
        return [c for c in chunks if c]

    def reset(self) -> None:
        """Drop the pending text: the next piece starts a new text (its first chunk ends
        at its first sentence boundary again)."""
        self._emitted = 0
        self._rescan("")

    def _rescan(self, text: str) -> None:
        """Hold ``text`` (what is left after a cut), nothing of it scanned yet.

        The scan's state: ``_scan``, where the search for a sentence boundary resumes
        (every boundary before it was turned down, for good: the decision on one
        depends on the text before it and the character after it only); ``_tail``, where
        the run of boundary characters at the end of the text starts (a boundary more
        text could still make begins there); ``_space_from``, while the text begins with
        a word longer than ``max_chars`` and nothing else to cut at, where to look for
        the space that ends it (None otherwise)."""
        self._buffer = text
        self._scan = 0
        self._tail = _boundary_run(text, 0, 0)
        self._space_from = None

    def fresh(self) -> SentenceSegmenter:
        """A copy with the same settings and no text: what ``speak_stream`` cuts each
        stream with, so that a segmenter given to several streams (one after another,
        or at once) never carries one's text into another."""
        clone = copy.copy(self)
        clone.reset()
        return clone

    @property
    def pending(self) -> str:
        """Text received and not yet returned in a chunk."""
        return self._buffer

    def _next_cut(self) -> Optional[int]:
        text = self._buffer
        if self._space_from is not None:
            # The text begins with a word longer than max_chars: only the space after it
            # (or its length reaching the limit) gives a cut; look at the new text only.
            start = self._space_from
            if text.find(" ", start) < 0 and len(text) <= self._word_limit(text):
                self._space_from = len(text)
                return None
            self._space_from = None
        minimum = self.min_chars if self._emitted else 1
        for match in _SENTENCE_END.finditer(text, self._scan):
            end = match.end()
            if end > self.max_chars and len(text[:end].strip()) > self.max_chars:
                break  # (so are the boundaries after it: only a long cut is left)
            if (
                self._is_sentence_end(text, match.start(), end)
                and len(text[:end].strip()) >= minimum
            ):
                return end
            self._scan = end  # turned down, for good: the next scan starts after it
        else:
            # No boundary ahead: one more text could still make starts in the run of
            # boundary characters at the end (if any), not before.
            self._scan = max(self._scan, self._tail)
        if len(text) > self.max_chars and len(text.strip()) > self.max_chars:
            cut = self._long_cut(text)
            if cut is None:
                self._space_from = len(text)
            return cut
        return None

    def _word_limit(self, text: str) -> int:
        """Where the text's first word reaches the most ``speak()`` accepts."""
        first = _NON_SPACE.search(text)
        return (first.start() if first is not None else 0) + MAX_TEXT_CHARS

    def _long_cut(self, text: str) -> Optional[int]:
        """A cut at or before ``max_chars``: the last clause boundary, else the last space
        (None when the first word is already longer, and not longer than ``speak()``
        accepts: cut after it, or at that limit)."""
        window = text[: self.max_chars + 1]
        best = None
        for match in _SENTENCE_END.finditer(window):
            if self._is_sentence_end(window, match.start(), match.end()):
                best = match.end()
        if best is None:
            for match in _CLAUSE_END.finditer(window):
                if not _inside_number(window, match.start()):
                    best = match.end()
        if best is None:
            space = window.rfind(" ")
            best = space if space > 0 else None
        if best is None and _UNSPACED.search(window[self.max_chars - 1 : self.max_chars + 1]):
            # Text without spaces (Chinese, Japanese): any character ends a "word".
            best = self.max_chars
        if best is None:
            # One word longer than max_chars: cut after it rather than inside it, unless
            # it is longer than speak() accepts.
            limit = self._word_limit(text)
            space = text.find(" ", self.max_chars, limit + 1)
            if space > 0:
                best = space
            elif len(text) > limit:
                best = limit
        return best

    def _is_sentence_end(self, text: str, start: int, end: int) -> bool:
        if text[start] == "\n":
            return True
        if text[start] != ".":
            return True  # ! ? … end a sentence even after "Dr"
        if end - start > 1 and text[start : start + 3] == "...":
            return True
        word_start = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start)) + 1
        word = text[word_start:start]
        bare = word.lstrip("\"'“‘([").lower()
        if not bare:
            return True
        if _URLISH.search(bare):
            return False
        if bare.isdigit() and not text[text.rfind("\n", 0, word_start) + 1 : word_start].strip():
            # A number alone at the start of a line is a list item's ("1. Open the
            # app"): its "." starts the sentence after it, it does not end one.
            return False
        if bare in self.abbreviations:
            return False
        # A single letter is an initial: "J. R. R. Tolkien".
        return not (len(bare) == 1 and bare.isalpha())


def _boundary_run(text: str, held: int, tail: int) -> int:
    """Where the run of boundary characters (:data:`_BOUNDARY_CHARS`) at the end of
    ``text`` starts, given ``tail``, where it started in ``text[:held]`` (the text
    before the last piece): only the piece is looked at, unless it is all such
    characters (then the run goes on from ``tail``)."""
    index = len(text)
    while index > held and text[index - 1] in _BOUNDARY_CHARS:
        index -= 1
    return tail if index == held else index


def _inside_number(text: str, index: int) -> bool:
    """``text[index]`` is a separator between digits (``1,000``)."""
    return 0 < index < len(text) - 1 and text[index - 1].isdigit() and text[index + 1].isdigit()
