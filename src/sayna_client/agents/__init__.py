"""Optional voice-agent helpers over the session API (no protocol change).

* :class:`SentenceSegmenter`: cut an LLM's token stream into ``speak``-sized chunks.
* :class:`SpeechHandle`: what ``client.speak()`` / ``client.speak_stream()`` return:
  await it, interrupt it, read what the user heard.
* :class:`AudioOutput`: the protocol of a speaker the client writes TTS audio to.

See ``docs/agents.md``.
"""

from .segmenter import DEFAULT_ABBREVIATIONS, SentenceSegmenter
from .speech import AudioOutput, SpeechHandle, SpeechQueue, bytes_per_second

__all__ = [
    "DEFAULT_ABBREVIATIONS",
    "AudioOutput",
    "SentenceSegmenter",
    "SpeechHandle",
    "SpeechQueue",
    "bytes_per_second",
]
