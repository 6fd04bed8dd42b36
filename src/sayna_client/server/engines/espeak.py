"""libespeak-ng through ctypes: the process-wide handle, its voices and synthesis.

The library and its data come from the ``espeakng-loader`` wheel, so nothing has to be
installed system-wide. libespeak-ng keeps all its state in process globals (current
voice, parameters, the one synthesis callback) and is not thread-safe, hence:

* one :class:`Espeak` per process (:func:`get_espeak`), initialised once;
* every call into the library holds :data:`_ESPEAK_LOCK`;
* :meth:`Espeak.synthesize` blocks its thread (ctypes releases the GIL during C calls)
  and hands audio to a sink as it is produced, so callers can stream it.

The asynchronous synthesizer over it is :class:`~.local_tts.EspeakSynthesizer`.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

try:
    import espeakng_loader
    import numpy as np
    import numpy.typing as npt
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the local engine needs the optional dependencies: pip install 'sayna-client[local]'"
    ) from exc

from .base import Voice

__all__ = [
    "DEFAULT_VOICE",
    "Espeak",
    "EspeakVoice",
    "Int16Array",
    "Sink",
    "get_espeak",
]

#: Voice used when a ``voice_id`` names no espeak voice (e.g. ``aura-asteria-en``).
DEFAULT_VOICE = "en-us"

# speak_lib.h constants (ESPEAK_API_REVISION 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000  # otherwise a missing data dir calls exit()
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_ENDPAUSE = 0x1000
_ESPEAK_RATE = 1
_EE_OK = 0

#: Length of the buffers espeak hands to the callback, in ms.
_CALLBACK_BUFFER_MS = 100

#: Serialises every call into libespeak-ng (process-global, not thread-safe).
_ESPEAK_LOCK = threading.Lock()

Int16Array = npt.NDArray[np.int16]
#: Receives one block of int16 samples at :attr:`Espeak.sample_rate`; returns False
#: to abort synthesis.
Sink = Callable[[Int16Array], bool]

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _CVoice(ctypes.Structure):
    """``espeak_VOICE`` from speak_lib.h; ``languages`` is a raw pointer (see below)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class EspeakVoice:
    """One installed espeak-ng voice.

    ``id`` is what ``GET /voices`` lists and ``voice_id`` accepts; ``identifier`` is
    espeak's own file name (``gmw/en-US``), optionally followed by ``+variant``.
    """

    id: str
    identifier: str
    name: str
    languages: tuple[tuple[int, str], ...]
    gender: str

    def to_voice(self) -> Voice:
        language, accent = _split_display_name(self.name)
        return Voice(
            id=self.id,
            name=self.name,
            accent=accent,
            gender=self.gender,
            language=language,
        )


def _split_display_name(name: str) -> tuple[str, str]:
    """``"English (America, New York City)"`` → ``("English", "America, New York City")``."""
    match = re.match(r"\s*([^(]*?)\s*\(([^)]*)\)", name)
    if match is None:
        return name.strip() or "Unknown", "Standard"
    return match.group(1) or "Unknown", match.group(2)


def _read_languages(pointer: Optional[int]) -> tuple[tuple[int, str], ...]:
    """Decode ``espeak_VOICE.languages``: repeated (priority byte, NUL-terminated code)
    pairs, ended by a zero priority byte. Lower priority numbers are preferred."""
    result: list[tuple[int, str]] = []
    if not pointer:
        return ()
    while True:
        priority = ctypes.string_at(pointer, 1)[0]
        if priority == 0:
            return tuple(result)
        code = ctypes.string_at(pointer + 1)
        result.append((priority, code.decode("utf-8", "replace").lower()))
        pointer += 2 + len(code)


class Espeak:
    """The process-wide libespeak-ng handle. Obtain it with :func:`get_espeak`.

    Attributes:
        sample_rate: rate of the pcm16 espeak produces (22050 Hz for the bundled data).
        voices: installed voices plus a few female English variants, sorted by id.
    """

    def __init__(self) -> None:
        # Called with _ESPEAK_LOCK held (see get_espeak).
        self._data_path = espeakng_loader.get_data_path()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_CVoice))
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            _CALLBACK_BUFFER_MS,
            self._data_path.encode(),
            _ESPEAK_INITIALIZE_DONT_EXIT,
        )
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise with data at {self._data_path}")
        self._lib = lib
        self.sample_rate: int = rate
        # The callback object must outlive every synthesis: keep it on the instance,
        # which lives for the whole process.
        self._callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        # Per-synthesis sink and the error it raised; only touched with the lock held.
        self._sink: Optional[Sink] = None
        self._sink_error: Optional[BaseException] = None
        self.voices: tuple[EspeakVoice, ...] = self._list_voices()
        self._by_key = self._index_voices(self.voices)

    def _list_voices(self) -> tuple[EspeakVoice, ...]:
        entries = self._lib.espeak_ListVoices(None)
        raw: list[tuple[str, str, tuple[tuple[int, str], ...], int]] = []
        index = 0
        while entries[index]:
            entry = entries[index].contents
            name = (entry.name or b"").decode("utf-8", "replace").strip()
            identifier = (entry.identifier or b"").decode("utf-8", "replace")
            raw.append((name, identifier, _read_languages(entry.languages), entry.gender))
            index += 1
        taken: set[str] = set()
        voices: list[EspeakVoice] = []
        for name, identifier, languages, gender in raw:
            # Prefer the voice's first language code as its public id ("en-us"), and the
            # file name where two voices share a code (the two Cantonese voices).
            candidates = [code for _, code in languages[:1]]
            candidates.append(identifier.rsplit("/", 1)[-1].lower())
            voice_id = next((c for c in candidates if c and c not in taken), identifier.lower())
            taken.add(voice_id)
            voices.append(
                EspeakVoice(
                    id=voice_id,
                    identifier=identifier,
                    name=name or voice_id,
                    languages=languages,
                    gender={1: "Male", 2: "Female"}.get(gender, "Unknown"),
                )
            )
        # espeak's language voices are all male; its "f" variants give English callers
        # a female option (and pocketsphinx happens to recognise f2 best).
        for base_id, variant in (("en-us", "f2"), ("en-gb", "f2")):
            base = next((v for v in voices if v.id == base_id), None)
            if base is not None and self._variant_exists(variant):
                voices.append(
                    EspeakVoice(
                        id=f"{base_id}+{variant}",
                        identifier=f"{base.identifier}+{variant}",
                        name=f"{base.name}, female",
                        languages=base.languages,
                        gender="Female",
                    )
                )
        return tuple(sorted(voices, key=lambda v: v.id))

    @staticmethod
    def _index_voices(voices: Sequence[EspeakVoice]) -> dict[str, EspeakVoice]:
        """Map every accepted spelling (lower-case) to a voice.

        Language codes resolve like espeak does: the voice listing the code with the
        lowest priority number wins (``en`` → British English).
        """
        index: dict[str, EspeakVoice] = {}
        best: dict[str, tuple[int, int]] = {}
        for order, voice in enumerate(voices):
            if "+" in voice.id:
                continue
            for priority, code in voice.languages:
                rank = (priority, order)
                if code not in best or rank < best[code]:
                    best[code] = rank
                    index[code] = voice
        for voice in voices:
            index[voice.identifier.lower()] = voice
            index[voice.identifier.rsplit("/", 1)[-1].lower()] = voice
            index[voice.name.lower()] = voice
            index[voice.id] = voice
        return index

    def _variant_exists(self, variant: str) -> bool:
        # Validate before handing the name to espeak: it silently ignores unknown
        # variants, and the name must not be able to walk out of the data directory.
        if not re.fullmatch(r"[A-Za-z0-9_]+", variant):
            return False
        return os.path.isfile(os.path.join(self._data_path, "voices", "!v", variant))

    def names_voice(self, voice_id: str) -> bool:
        """True when ``voice_id`` names an espeak voice explicitly: a listed id, language
        code, file or display name (with an optional ``+variant``), or a provider id
        whose locale prefix is a language espeak speaks other than English
        (``de-DE-KatjaNeural``). Never raises."""
        key = voice_id.strip().partition("+")[0].strip().lower()
        if key in self._by_key:
            return True
        parts = re.split(r"[-_]", key)
        return (
            len(parts) >= 2
            and parts[0] != "en"
            and re.fullmatch(r"[a-z]{2,3}", parts[0]) is not None
            and parts[0] in self._by_key
        )

    def resolve_voice(self, voice_id: str) -> str:
        """Return the espeak voice name (``gmw/en-US`` or ``gmw/en-US+f2``) for ``voice_id``.

        Accepts listed ids, espeak language codes and file names, display names, and
        an optional ``+variant`` suffix (``en-us+f3``). Provider-style ids that start
        with a locale (``en-GB-Wavenet-D``, ``de-DE-KatjaNeural``) use that locale's
        voice. Anything else — Deepgram (``aura-asteria-en``) or ElevenLabs ids, empty
        strings, unknown variants — falls back to :data:`DEFAULT_VOICE`. Never raises.
        """
        base, _, variant = voice_id.strip().partition("+")
        key = base.strip().lower()
        voice = self._by_key.get(key)
        if voice is None:
            # Locale-prefixed provider ids: "en-GB-Wavenet-D" → en-gb, "de-DE-X" → de.
            parts = re.split(r"[-_]", key)
            if (
                len(parts) >= 2
                and re.fullmatch(r"[a-z]{2,3}", parts[0])
                and re.fullmatch(r"[a-z]{2}|[0-9]{3}", parts[1])
            ):
                voice = self._by_key.get(f"{parts[0]}-{parts[1]}") or self._by_key.get(parts[0])
        if voice is None:
            voice = self._by_key[DEFAULT_VOICE]
        if variant and "+" not in voice.identifier and self._variant_exists(variant.strip()):
            return f"{voice.identifier}+{variant.strip()}"
        return voice.identifier

    def _on_audio(
        self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: Optional[int]
    ) -> int:
        """espeak's synth callback: 0 = continue, 1 = abort. Runs in the synth thread."""
        sink = self._sink
        if sink is None:
            return 1
        if not wav or count <= 0:  # NULL marks the end; zero-length buffers happen too
            return 0
        try:
            samples = np.ctypeslib.as_array(wav, shape=(count,)).copy()
            return 0 if sink(samples) else 1
        except BaseException as exc:  # an exception must not unwind through C frames
            self._sink_error = exc
            return 1

    def synthesize(self, text: str, voice: str, words_per_minute: int, sink: Sink) -> None:
        """Render ``text`` synchronously, passing pcm16 blocks to ``sink`` as they appear.

        Blocks the calling thread (and every other espeak user) until done; call it
        from a worker thread. ``sink`` returns False to abort; an exception it raises
        aborts synthesis and is re-raised here.

        Raises:
            RuntimeError: espeak rejected the voice or the synthesis.
        """
        data = text.replace("\x00", " ").encode("utf-8") + b"\x00"
        with _ESPEAK_LOCK:
            if self._lib.espeak_SetVoiceByName(voice.encode("utf-8")) != _EE_OK:
                raise RuntimeError(f"espeak-ng rejected voice {voice!r}")
            # Set after the voice: selecting a voice resets the rate to its default.
            self._lib.espeak_SetParameter(_ESPEAK_RATE, words_per_minute, 0)
            self._sink = sink
            self._sink_error = None
            try:
                status = self._lib.espeak_Synth(
                    data,
                    len(data),
                    0,
                    _POS_CHARACTER,
                    0,
                    _ESPEAK_CHARS_UTF8 | _ESPEAK_ENDPAUSE,
                    None,
                    None,
                )
            finally:
                self._sink = None
            error, self._sink_error = self._sink_error, None
        if error is not None:
            raise error
        if status != _EE_OK:
            raise RuntimeError(f"espeak-ng synthesis failed (status {status})")


_INSTANCE: Optional[Espeak] = None


def get_espeak() -> Espeak:
    """Return the process-wide :class:`Espeak`, initialising libespeak-ng on first use.

    Raises:
        RuntimeError: the bundled library or its data cannot be loaded.
    """
    global _INSTANCE
    instance = _INSTANCE
    if instance is None:
        with _ESPEAK_LOCK:
            if _INSTANCE is None:
                _INSTANCE = Espeak()
            instance = _INSTANCE
    return instance
