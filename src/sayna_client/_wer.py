"""Word error rate between a reference text and a transcript (for ``sayna demo`` and the
engine benchmarks).

Both texts are normalised the way ASR evaluations usually do: lower case, punctuation and
hyphens dropped, numbers below a thousand spelled out ("10" -> "ten"), a few written
abbreviations expanded ("Mr." -> "mister").
"""

from __future__ import annotations

import re

__all__ = ["normalize_words", "word_error_rate", "word_errors"]

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "ok": "okay"}


def _spell(number: int) -> list[str]:
    if number < 20:
        return [_ONES[number]]
    if number < 100:
        tens, ones = divmod(number, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    hundreds, rest = divmod(number, 100)
    return [_ONES[hundreds], "hundred"] + (_spell(rest) if rest else [])


def normalize_words(text: str) -> list[str]:
    """The words of ``text`` after normalisation (see the module docstring)."""
    words: list[str] = []
    for token in re.findall(r"[a-z0-9']+", text.lower().replace("-", " ")):
        token = token.strip("'")
        if not token:
            continue
        if token.isdigit() and len(token) <= 3:
            words.extend(_spell(int(token)))
        else:
            words.append(_ABBREVIATIONS.get(token, token))
    return words


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """``(substitutions + deletions + insertions, reference word count)``."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i]
        for j, other in enumerate(hyp, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
            )
        previous = current
    return previous[-1], len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Errors divided by the reference's word count (0.0 for two empty texts; 1.0 when
    only the reference is empty and the hypothesis is not)."""
    errors, count = word_errors(reference, hypothesis)
    if count == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / count
