"""SentenceSegmenter: a pure function of the text, whatever the pieces."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sayna_client import SaynaValidationError
from sayna_client._config import MAX_TEXT_CHARS
from sayna_client.agents import SentenceSegmenter


def cut(text: str, piece: int = 1, **kwargs: int) -> list[str]:
    segmenter = SentenceSegmenter(**kwargs)
    chunks: list[str] = []
    for start in range(0, len(text), piece):
        chunks += segmenter.push(text[start : start + piece])
    return chunks + segmenter.finish()


def test_first_sentence_leaves_at_once_and_later_ones_respect_min_chars() -> None:
    segmenter = SentenceSegmenter(min_chars=20)
    assert segmenter.push("Hi.") == []  # the boundary needs the next character
    assert segmenter.push(" Ok.") == ["Hi."]
    assert segmenter.push(" Fine. And now a longer one. ") == ["Ok. Fine. And now a longer one."]
    assert segmenter.finish() == []


@pytest.mark.parametrize(
    "text",
    [
        "Pi is about 3.14159 and e is 2.71828 in value.",
        "Dr. Smith met Mrs. Jones at St. Mary's today.",
        "Bring snacks, e.g. apples, i.e. fruit, etc. for everyone please.",
        "See https://example.com/docs/v1.2/index.html for the full list now.",
        "Write to help.desk@example.co.uk or visit www.example.org today ok.",
        "The author J. R. R. Tolkien wrote many long books indeed.",
    ],
)
def test_no_cut_inside_numbers_abbreviations_or_urls(text: str) -> None:
    first = "Okay. "
    assert cut(first + text + " Then more text follows here.") == [
        "Okay.",
        text,
        "Then more text follows here.",
    ]


def test_long_text_is_cut_at_clauses_then_spaces() -> None:
    text = "alpha beta gamma, delta epsilon zeta eta theta iota kappa lambda mu nu xi"
    assert cut(text, max_chars=30) == [
        "alpha beta gamma,",
        "delta epsilon zeta eta theta",
        "iota kappa lambda mu nu xi",
    ]
    assert cut("a" * 40 + " b", max_chars=20) == ["a" * 40, "b"]  # never inside a word


def test_other_sentence_ends_and_paragraphs() -> None:
    assert cut("Really?! Yes… I think so\n\nNew paragraph here", min_chars=0) == [
        "Really?!",
        "Yes…",
        "I think so",
        "New paragraph here",
    ]
    assert cut('He said "stop." Then he left the building.') == [
        'He said "stop."',
        "Then he left the building.",
    ]


def test_bad_arguments() -> None:
    with pytest.raises(SaynaValidationError, match="max_chars"):
        SentenceSegmenter(min_chars=50, max_chars=20)
    with pytest.raises(SaynaValidationError, match="speak\\(\\) accepts"):
        SentenceSegmenter(max_chars=MAX_TEXT_CHARS + 1)
    with pytest.raises(SaynaValidationError, match="min_chars"):
        SentenceSegmenter(min_chars=-1)
    with pytest.raises(SaynaValidationError, match="str"):
        SentenceSegmenter().push(b"bytes")  # type: ignore[arg-type]
    assert SentenceSegmenter(abbreviations=["Approx."]).abbreviations == frozenset({"approx"})
    with pytest.raises(SaynaValidationError, match="collection of words"):
        SentenceSegmenter(abbreviations="dr")  # was taken as {"d", "r"}


words = st.sampled_from(
    [
        "Hello",
        "world.",
        "Dr.",
        "3.14",
        "e.g.",
        "yes,",
        "no;",
        "https://a.b/c.d",
        "ok!",
        "why?",
        "a",
        "longer",
        "sentence",
        "here",
        "and",
        "there",
        "x" * 30,
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(words, min_size=1, max_size=80),
    st.integers(min_value=1, max_value=9),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=40, max_value=120),
)
def test_chunks_keep_every_word_and_do_not_depend_on_the_pieces(
    tokens: list[str], piece: int, min_chars: int, max_chars: int
) -> None:
    text = " ".join(tokens)
    whole = cut(text, len(text), min_chars=min_chars, max_chars=max_chars)
    assert " ".join(whole).split() == tokens
    assert cut(text, piece, min_chars=min_chars, max_chars=max_chars) == whole
    for chunk in whole:
        assert len(chunk) <= max_chars or " " not in chunk[: max_chars + 1].strip()


def test_a_fresh_copy_keeps_the_settings_and_none_of_the_text() -> None:
    segmenter = SentenceSegmenter(min_chars=5, max_chars=40, abbreviations=["approx"])
    assert segmenter.push("Hi. Approx. two of them. And the rest") == [
        "Hi.",
        "Approx. two of them.",
    ]
    fresh = segmenter.fresh()
    assert (fresh.min_chars, fresh.max_chars, fresh.abbreviations) == (5, 40, {"approx"})
    assert fresh.pending == ""
    assert fresh.push("Ok. more ") == ["Ok."]  # its first chunk ends at the first boundary
    assert segmenter.pending == "And the rest"  # the original is untouched
    segmenter.reset()
    assert segmenter.pending == ""
    assert segmenter.push("Ok. more ") == ["Ok."]


CHINESE = "今天天气很好。我们去公园散步吧！你觉得怎么样？" + "这是一段没有标点的很长的文字" * 12


@pytest.mark.parametrize("piece", [1, 3, len(CHINESE)])
def test_text_without_spaces_is_cut_at_its_own_stops_and_at_max_chars(piece: int) -> None:
    chunks = cut(CHINESE, piece, min_chars=5, max_chars=40)
    assert chunks[:3] == ["今天天气很好。", "我们去公园散步吧！", "你觉得怎么样？"]
    assert all(len(chunk) <= 40 for chunk in chunks)  # finish() too (it gave all the rest)
    assert "".join(chunks) == CHINESE


def test_a_cjk_stop_keeps_its_closing_bracket_and_clauses_cut_long_text() -> None:
    assert cut("他说：「好。」然后走了。", 1) == ["他说：「好。」", "然后走了。"]
    clauses = "第一部分的内容，" * 8
    chunks = cut(clauses, 1, min_chars=0, max_chars=30)
    assert chunks[0] == "第一部分的内容，第一部分的内容，第一部分的内容，"
    assert "".join(chunks) == clauses


def test_a_long_unspaced_latin_word_is_still_never_split() -> None:
    url = "https://example.com/" + "a" * 60
    assert cut(f"See {url} now", 1, max_chars=20) == ["See", url, "now"]


def test_text_that_cannot_be_cut_yet_costs_each_piece_its_own_size() -> None:
    # One 80,000-character "word" in 4-character pieces (a model emitting base64, a long
    # URL): each push used to scan all the text held, 27 s on the event loop in all.
    segmenter = SentenceSegmenter()
    started = time.process_time()
    chunks: list[str] = []
    for _ in range(20_000):
        chunks += segmenter.push("ab.c")
    spent = time.process_time() - started
    assert chunks == []
    assert len(segmenter.pending) == 80_000
    assert spent < 5.0, f"{spent:.1f} s of CPU for 20,000 pieces"


@pytest.mark.parametrize("piece", [7, 30_000, 3 * MAX_TEXT_CHARS])
def test_a_word_longer_than_speak_accepts_is_cut_at_that_limit(piece: int) -> None:
    word = "abcdefghij" * (MAX_TEXT_CHARS // 4)  # 2.5 times the limit
    text = f"Sure. {word} done."
    chunks = cut(text, piece)
    assert chunks == [
        "Sure.",
        word[:MAX_TEXT_CHARS],
        word[MAX_TEXT_CHARS : 2 * MAX_TEXT_CHARS],
        word[2 * MAX_TEXT_CHARS :],  # longer than max_chars: cut after it, as always
        "done.",
    ]
    assert all(len(chunk) <= MAX_TEXT_CHARS for chunk in chunks)  # speak() takes each
    exact = "x" * MAX_TEXT_CHARS  # as long as speak() accepts: not cut
    assert cut(f"{exact} then", piece) == [exact, "then"]
    segmenter = SentenceSegmenter()
    assert segmenter.push(word[: MAX_TEXT_CHARS + 1]) == [word[:MAX_TEXT_CHARS]]
    assert segmenter.finish() == [word[MAX_TEXT_CHARS]]


def test_a_numbered_list_item_keeps_its_number() -> None:
    # An LLM's list: the item number used to end the sentence before it ("...steps:
    # one." then a pause), as a "1." followed by a space looks like a full stop.
    tokens = ["Sure", "!", " Here", " are", " the", " steps", ":", "\n\n", "1", ".", " Open"]
    tokens += [" the", " settings", " app", " on", " your", " phone", ".", "\n", "2", "."]
    tokens += [" Tap", " your", " account", " name", " at", " the", " top", ".", "\n", "3", "."]
    tokens += [" Choose", " sign", " out", "."]
    segmenter = SentenceSegmenter()
    chunks: list[str] = []
    for token in tokens:
        chunks += segmenter.push(token)
    chunks += segmenter.finish()
    assert chunks == [
        "Sure!",
        "Here are the steps:\n\n1. Open the settings app on your phone.",
        "2. Tap your account name at the top.",
        "3. Choose sign out.",
    ]
    assert not any(chunk.endswith(("1.", "2.", "3.")) for chunk in chunks)
    # Whatever the pieces; a first chunk (cut at its first boundary) is no bare number
    # either, while a number ending a sentence inside a line still ends it.
    assert cut("1. Open the app. 2. Tap it.") == ["1. Open the app.", "2. Tap it."]
    assert cut("Steps:\n  12. Go on.") == ["Steps:\n  12. Go on."]
    assert cut("I counted to 3. Then I stopped here.", min_chars=1) == [
        "I counted to 3.",
        "Then I stopped here.",
    ]
