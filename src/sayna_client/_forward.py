"""How ``SaynaClient`` forwards the seed's names to the parts it composes.

``client.speak`` calls the voice session's ``speak``: :func:`forward` makes a method of
the client that looks the method up on the part (``client._voice.speaking``) at each
call and calls it. It is a plain function in the class, with the part's signature and
docstring, so the client behaves as if it had written the method itself:
``SaynaClient.speak(client, "hi")`` works, a subclass may override it and call
``super()``, ``unittest.mock``'s ``create_autospec`` and ``patch.object(...,
autospec=True)`` see a method, and a wrapper patched onto the class runs. A ``hot``
one (``on_audio_input``, called 50 times a second per stream) is the part's bound
method on an instance, stored there by the constructor (:func:`store_hot`), so every
call, and every call through a reference kept before the first frame, goes straight to
the part (not when a subclass overrides the name: its method stays what the name means;
nor over a wrapper the user set on the instance; a wrapper or mock patched onto the
class after a client was made does not see that client's frames: patch the class
before making the client, or patch the instance). The others store nothing (a stored
bound method is 64 bytes per client, for calls made once or twice a session: issue
#19's idle memory per session). :class:`ForwardAttribute` does the same for a value
the part holds (``client.ready``), read through (:class:`ForwardSetting`: read and
written through, ``client.stt_config``), and
:class:`ReadyField` for a field of the session's ``ready`` message
(``client.livekit_url``).
"""

from __future__ import annotations

import functools
import inspect
import operator
import sys
from typing import Any, Callable, Generic, Optional, TypeVar, cast, overload

# (typing_extensions comes with pydantic; typing has these from Python 3.10 on.)
from typing_extensions import Concatenate, Never, ParamSpec

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

__all__ = [
    "ForwardAttribute",
    "ForwardSetting",
    "ReadyField",
    "defines",
    "forward",
    "forwarding",
    "is_forward",
    "store_hot",
]


def forward(
    path: str, function: Callable[Concatenate[Any, P], R], *, hot: bool = False
) -> Callable[Concatenate[Any, P], R]:
    """A method of the owner that calls the method of the same name of the part at
    ``path`` (the dotted attribute path of the part on the owner, ``"_voice.speaking"``)
    with the same arguments; ``function`` is the part's function, for the signature and
    the docstring. ``hot``: a coroutine method called many times a second, which the
    owner's constructor stores on the instance with :func:`store_hot` (see the module
    docstring)."""
    part = operator.attrgetter(path)
    name = function.__name__
    method: Callable[..., Any]
    if hot:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"a hot forward needs a coroutine function, not {name}")

        async def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
            # (Reached through the class, ``super()``, or before :func:`store_hot`.)
            return await getattr(part(self), name)(*args, **kwargs)

        setattr(method, _HOT, part)
    elif inspect.iscoroutinefunction(function):

        async def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
            return await getattr(part(self), name)(*args, **kwargs)

    else:

        def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
            return getattr(part(self), name)(*args, **kwargs)

    functools.update_wrapper(method, function)
    setattr(method, _FORWARDS, path)  # (see forwarding())
    return cast("Callable[Concatenate[Any, P], R]", method)


#: The attribute that marks a method made by :func:`forward` (the part's path).
_FORWARDS = "__sayna_forwards__"
#: The attribute that marks a hot forward (its part's getter).
_HOT = "__sayna_hot__"


def store_hot(obj: Any, name: str) -> None:
    """Store the part's own bound method for the hot forward ``name`` on ``obj`` (its
    constructor calls this), so that ``obj.name``, and any reference to it kept before
    the first call (a device's callback, a pacing clock), goes straight to the part.
    Nothing is stored where ``name`` means something else on ``obj``'s class (a
    subclass's override, a mock patched onto the class before ``obj`` was made)."""
    method = getattr(type(obj), name, None)
    part = getattr(method, _HOT, None)
    if part is not None and defines(type(obj), name, method):
        # (Set as an attribute, not through ``obj.__dict__``: reading that makes the
        # instance's dict a tracked object of its own.)
        object.__setattr__(obj, name, getattr(part(obj), name))


def is_forward(value: object) -> bool:
    """``value`` is a method made by :func:`forward` (for the docs' hook)."""
    return callable(value) and hasattr(value, _FORWARDS)


C = TypeVar("C", bound=type)


def forwarding(cls: C) -> C:
    """Class decorator: name the class's :func:`forward` methods after it
    (``SaynaClient.speak`` rather than the part's ``Speaking.speak``, in reprs and
    tracebacks)."""
    for name, value in vars(cls).items():
        if is_forward(value):
            value.__qualname__ = f"{cls.__qualname__}.{name}"
    return cls


def defines(cls: type, name: str, value: object) -> bool:
    """``value`` is what ``name`` means on ``cls``: no subclass in between overrides it.
    A method that stores something on the instance at its first use under its own name
    stores it only then: reached through ``super()`` from a subclass's override, the
    stored value would shadow that override for every later call."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name] is value
    return False


class ForwardAttribute(Generic[T]):
    """A read-only attribute of the owner that is the attribute of the same name of the
    part at ``path``, documented by ``doc``: the part's own docstring where it has one
    (``VoiceSession.ready.__doc__``), so the text is written once.
    :class:`ForwardSetting` is the one that may be written.

    Assigning it raises ``AttributeError``, and a type checker refuses the assignment
    (``client.ready = True``: no value has the type ``__set__`` takes).

    Raises:
        TypeError: ``doc`` is empty or None (every forwarded name is documented), unless
            docstrings are stripped (``python -OO``: every ``__doc__`` is None there).
    """

    #: Whether the attribute may be assigned (a :class:`ForwardSetting`).
    writable = False

    def __init__(self, path: str, doc: Optional[str]) -> None:
        if not doc and sys.flags.optimize < 2:
            raise TypeError(f"the attribute forwarded to {path} has no documentation")
        self._path = path
        self._part = operator.attrgetter(path)
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

    def __set__(self, obj: object, value: Never) -> None:
        # (``Never``: to a type checker, no value may be assigned.)
        raise AttributeError(f"{self._name} is read-only")


class ForwardSetting(ForwardAttribute[T]):
    """A :class:`ForwardAttribute` that may be written: an assignment is checked by
    ``check`` (which raises for a value that may not be written, with the constructor's
    message), then written to the part."""

    writable = True

    def __init__(
        self, path: str, doc: Optional[str], *, check: Optional[Callable[[Any], None]] = None
    ) -> None:
        super().__init__(path, doc)
        self._check = check

    def __set__(self, obj: object, value: T) -> None:
        if self._check is not None:
            self._check(value)
        setattr(self._part(obj), self._name, value)


class ReadyField:
    """A read-only attribute of the owner: the field ``field`` of the latest ``ready``
    message its voice session received (``owner._voice.last_ready``), kept after that
    session ended (``get_recording(client.received_stream_id)`` once the call is over),
    None before the first ``ready``; documented by ``doc``."""

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

    def __set__(self, obj: object, value: Never) -> None:
        # (``Never``: to a type checker, no value may be assigned.)
        raise AttributeError(f"{self._name} is read-only: the server sets it in `ready`")


_ready_message = operator.attrgetter("_voice.last_ready")


def _unnamed(_obj: object) -> Any:
    raise TypeError("a ForwardAttribute works only as an attribute set in a class body")
