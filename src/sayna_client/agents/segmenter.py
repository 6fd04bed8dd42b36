"""Cut a stream of text pieces (LLM tokens) into chunks worth one ``speak`` each.

Pure and synchronous: :class:`SentenceSegmenter` takes pieces with :meth:`push` and
returns the chunks that are complete; :meth:`finish` returns the rest. No I/O, no clock.

A chunk ends at a sentence boundary (``.``, ``!``, ``?``, ``…`` or a blank line,
followed by whitespace; ``。``, ``！``, ``？`` followed by any character) once it holds at
least ``min_chars`` characters; the first chunk ends at the first sentence boundary
whatever its length, so speech starts as soon as possible. A chunk that grows past
``max_chars`` without a sentence boundary is cut at its last clause boundary (``,``
``;`` ``:`` or a dash, followed by whitespace; ``，`` ``、`` ``；`` ``：``), else at its
last space, else, in text written without spaces (Chinese, Japanese), at ``max_chars``.
A ``.`` is not a boundary inside a number (``3.14``), after a known abbreviation
(``Dr.``, ``e.g.``, ``etc.``) or an initial (``J.``), or inside a URL or an e-mail
address: a boundary needs the whitespace after it, so a cut never waits for more than
the next piece.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Optional

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


class SentenceSegmenter:
    """Incremental sentence/clause segmenter (see the module docstring).

    Args:
        min_chars: a sentence boundary ends a chunk (after the first) only when the chunk
            holds at least this many characters; shorter sentences are joined to the next.
        max_chars: longest chunk: past it the text is cut at a clause boundary or a space
            (a single word longer than this is never split).
        abbreviations: words that do not end a sentence with their ``.`` (a collection
            of words, such as ``{"dr", "approx"}``).

    Raises:
        SaynaValidationError: ``min_chars`` negative, ``max_chars`` below 10 or below
            ``min_chars``, or ``abbreviations`` one string.
    """

    def __init__(
        self,
        min_chars: int = 20,
        max_chars: int = 250,
        abbreviations: Optional[Iterable[str]] = None,
    ) -> None:
        if type(min_chars) is not int or min_chars < 0:
            raise SaynaValidationError("min_chars must be a whole number >= 0, e.g. 20")
        if type(max_chars) is not int or max_chars < max(10, min_chars):
            raise SaynaValidationError(
                "max_chars must be a whole number >= 10 and >= min_chars, e.g. 250"
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

    def push(self, piece: str) -> list[str]:
        """Add ``piece``; return the chunks now complete (stripped, non-empty), in order.

        Raises:
            SaynaValidationError: ``piece`` is not a string.
        """
        if not isinstance(piece, str):
            raise SaynaValidationError(f"text pieces must be str, got {type(piece).__name__}")
        self._buffer += piece
        chunks: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                return chunks
            chunk, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:].lstrip()
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
        self._buffer, self._emitted = "", 0

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
        minimum = self.min_chars if self._emitted else 1
        for match in _SENTENCE_END.finditer(text):
            end = match.end()
            if len(text[:end].strip()) > self.max_chars:
                break
            if not self._is_sentence_end(text, match.start(), end):
                continue
            if len(text[:end].strip()) >= minimum:
                return end
        if len(text.strip()) > self.max_chars:
            return self._long_cut(text)
        return None

    def _long_cut(self, text: str) -> Optional[int]:
        """A cut at or before ``max_chars``: the last clause boundary, else the last space
        (None when the first word is already longer)."""
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
            # One word longer than max_chars: cut after it rather than inside it.
            space = text.find(" ", self.max_chars)
            best = space if space > 0 else None
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
        if bare in self.abbreviations:
            return False
        # A single letter is an initial: "J. R. R. Tolkien".
        return not (len(bare) == 1 and bare.isalpha())


def _inside_number(text: str, index: int) -> bool:
    """``text[index]`` is a separator between digits (``1,000``)."""
    return 0 < index < len(text) - 1 and text[index - 1].isdigit() and text[index + 1].isdigit()
