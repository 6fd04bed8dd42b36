"""How ``SaynaClient`` forwards the seed's names to the parts it composes.

``client.speak`` *is* the voice session's ``speak``: :class:`Forward` looks the
method up on the part (``client._voice.speaking``) at each use. A ``hot`` one
(``on_audio_input``, called 50 times a second per stream) stores that bound method on
the instance at the first use, so later calls cost a plain attribute read (unless a
subclass overrides the name: its method stays what the name means); the others
do not (a stored bound method is 64 bytes per client, for calls made once or twice a
session: issue #19's idle memory per session). On the class, the
attribute is the part's function itself, so ``help(SaynaClient.speak)`` shows its
signature and docstring. :class:`ForwardAttribute` does the same for a value the
part holds (``client.stt_config``), read and optionally written through, and
:class:`ReadyField` for a field of the session's ``ready`` message
(``client.livekit_url``).
"""

from __future__ import annotations

import operator
import sys
from typing import Any, Callable, Generic, Optional, TypeVar, overload

# (typing_extensions comes with pydantic; typing has these from Python 3.10 on.)
from typing_extensions import Concatenate, ParamSpec

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

__all__ = ["Forward", "ForwardAttribute", "ReadyField", "defines"]


class Forward(Generic[P, R]):
    """A method of the owner that is the method of the same name of the part at ``path``.

    Args:
        path: the dotted attribute path of the part on the owner (``"_voice.speaking"``).
        function: the part's function (its class attribute), for the signature and
            the docstring.
        hot: store the bound method on the instance at the first use (for a method
            called many times a second).
    """

    def __init__(
        self, path: str, function: Callable[Concatenate[Any, P], R], *, hot: bool = False
    ) -> None:
        self._part = operator.attrgetter(path)
        self._function = function
        self._hot = hot
        self._name = function.__name__
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def __set_name__(self, owner: type, name: str) -> None:
        if name != self._name:
            raise TypeError(f"{owner.__name__}.{name} must forward to a method of that name")

    @overload
    def __get__(
        self, obj: None, owner: Optional[type] = None
    ) -> Callable[Concatenate[Any, P], R]: ...

    @overload
    def __get__(self, obj: object, owner: Optional[type] = None) -> Callable[P, R]: ...

    def __get__(self, obj: Optional[object], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self._function
        bound = getattr(self._part(obj), self._name)
        if self._hot and defines(type(obj), self._name, self):
            obj.__dict__[self._name] = bound  # a non-data descriptor: the instance's wins
        return bound


def defines(cls: type, name: str, descriptor: object) -> bool:
    """``descriptor`` is what ``name`` means on ``cls``: no subclass in between
    overrides it. A descriptor that stores its value on the instance at the first use
    stores it only then: reached through ``super()`` from a subclass's override, the
    stored value would shadow that override for every later call."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name] is descriptor
    return False


class ForwardAttribute(Generic[T]):
    """An attribute of the owner that is the attribute of the same name of the part at
    ``path`` (read-only unless ``writable``), documented by ``doc``: the part's own
    docstring where it has one (``VoiceSession.ready.__doc__``), so the text is written
    once.

    Raises:
        TypeError: ``doc`` is empty or None (every forwarded name is documented), unless
            docstrings are stripped (``python -OO``: every ``__doc__`` is None there).
    """

    def __init__(self, path: str, doc: Optional[str], *, writable: bool = False) -> None:
        if not doc and sys.flags.optimize < 2:
            raise TypeError(f"the attribute forwarded to {path} has no documentation")
        self._path = path
        self._part = operator.attrgetter(path)
        self._writable = writable
        self._name = ""
        #: Reads ``obj.<path>.<name>`` in one call (``client.ready`` is read per event);
        #: made by ``__set_name__``.
        self._read: Callable[[object], Any] = _unnamed
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._read = operator.attrgetter(f"{self._path}.{name}")

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> ForwardAttribute[T]: ...

    @overload
    def __get__(self, obj: object, owner: Optional[type] = None) -> T: ...

    def __get__(self, obj: Optional[object], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return self._read(obj)

    def __set__(self, obj: object, value: T) -> None:
        if not self._writable:
            raise AttributeError(f"{self._name} is read-only")
        setattr(self._part(obj), self._name, value)


class ReadyField:
    """A read-only attribute of the owner: the field ``field`` of its voice session's
    ``ready`` message (``owner._voice.ready_message``), None before the first ``ready``;
    documented by ``doc``."""

    def __init__(self, field: str, doc: str) -> None:
        self._field = field
        self._name = ""
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> ReadyField: ...

    @overload
    def __get__(self, obj: object, owner: Optional[type] = None) -> Optional[str]: ...

    def __get__(self, obj: Optional[object], owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        ready = _ready_message(obj)
        return getattr(ready, self._field) if ready is not None else None

    def __set__(self, obj: object, value: object) -> None:
        raise AttributeError(f"{self._name} is read-only: the server sets it in `ready`")


_ready_message = operator.attrgetter("_voice.ready_message")


def _unnamed(_obj: object) -> Any:
    raise TypeError("a ForwardAttribute works only as an attribute set in a class body")
