"""Fan-out plans: where each published event goes, precomputed per event type.

The reader task publishes every event once. The hub (:class:`~.hub.EventHub`) appends
it to each interested consumer's mailbox (the session's callback dispatcher, every
``events()`` / ``turns()`` iterator that takes its type), then calls the SDK's own
inline observers (cheap bookkeeping such as the session tracker; they run on the reader
task and must neither block nor raise). Appends never block, so no consumer can stall
the reader.

A hub keeps its consumers as one tuple of *targets*, each called as
``function(target, event)``:

* index 0: the callback dispatcher, with ``Dispatcher.put`` (used only for types some
  callback takes);
* then one mailbox per iterator, in subscription order, with ``Mailbox.put``;
* then the observers' objects, in registration order, each with the function of its
  class it registered (an observer given as ``obj.method`` is kept as ``obj`` and
  ``type(obj).method``).

Where each event type goes is a :class:`Plan`: event type -> the indexes of its
targets, and the function of each target. A plan depends only on the *types* the
consumers take and on those functions, never on the consumers themselves, so every
session that registers alike (the seed's three callbacks and the SDK's own observers)
shares one plan, and holds only its tuple of targets (issue #19: a routing table is 272
bytes; per session it was two of them and their tuples; and a bound method per target
is one more object per session that every full collection walks). Plans are rebuilt
whenever a consumer comes or goes (rare); publishing is one dict lookup and one call
per target. TTS audio has its own entry point (see the hub), with no plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional

__all__ = ["Plan", "TargetFunction", "callback_plan", "plan_for"]

#: Event type -> indexes into a consumer tuple; shared, never mutated.
Table = dict[str, tuple[int, ...]]
#: What a target is called with: ``function(target, event)``.
TargetFunction = Callable[[Any, Any], object]

#: Plans made so far, by what they depend on (bounded: one per distinct shape of
#: registrations, and processes register a few shapes).
_PLANS: dict[object, Plan] = {}
_CALLBACK_PLANS: dict[tuple[frozenset[str], ...], Table] = {}
_MAX_PLANS = 256


class Plan:
    """The routes of one shape of consumers (shared by every hub with that shape).

    Attributes:
        callback_types: event types some callback takes (``tts_audio`` included).
        iterator_types: per iterator, the types it takes (None: every type).
        observer_types: per observer, its event type.
        functions: per target, what it is called with (see the module docstring).
        table: event type -> indexes of its targets (see the module docstring).
        default: the targets of a type absent from ``table`` (the all-types iterators).
    """

    __slots__ = (
        "callback_types",
        "default",
        "functions",
        "iterator_types",
        "observer_types",
        "table",
    )

    def __init__(
        self,
        callback_types: frozenset[str],
        iterator_types: tuple[Optional[frozenset[str]], ...],
        observer_types: tuple[str, ...],
        functions: tuple[TargetFunction, ...],
    ) -> None:
        if len(functions) != 1 + len(iterator_types) + len(observer_types):
            raise ValueError("a plan needs one function per target")
        self.callback_types = callback_types
        self.iterator_types = iterator_types
        self.observer_types = observer_types
        self.functions = functions
        by_type: dict[str, list[int]] = {}
        default: list[int] = []
        for event_type in callback_types - {"tts_audio"}:
            by_type[event_type] = [0]
        for index, types in enumerate(iterator_types, 1):
            if types is None:
                default.append(index)
                for routes in by_type.values():
                    routes.append(index)
            else:
                for event_type in types - {"tts_audio"}:
                    by_type.setdefault(event_type, list(default)).append(index)
        first = 1 + len(iterator_types)
        for index, event_type in enumerate(observer_types, first):
            by_type.setdefault(event_type, list(default)).append(index)
        # Types with the same routes share one tuple (most go to the callbacks only).
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        self.table: Table = {
            event_type: shared.setdefault(tuple(routes), tuple(routes))
            for event_type, routes in by_type.items()
        }
        self.default = tuple(default)


def plan_for(
    callback_types: frozenset[str],
    iterator_types: tuple[Optional[frozenset[str]], ...],
    observer_types: tuple[str, ...],
    functions: tuple[TargetFunction, ...],
) -> Plan:
    """The (shared) plan for consumers taking these types, called with these
    ``functions`` (one per target: the dispatcher's, the iterators', the observers')."""
    key = (callback_types, iterator_types, observer_types, functions)
    plan = _PLANS.get(key)
    if plan is None:
        plan = Plan(callback_types, iterator_types, observer_types, functions)
        if len(_PLANS) < _MAX_PLANS:
            _PLANS[key] = plan
    return plan


def callback_plan(types: Sequence[frozenset[str]]) -> Table:
    """Event type -> indexes of the callbacks taking it, for callbacks registered (in
    this order) for ``types``; shared by every dispatcher with the same registrations."""
    key = tuple(types)
    table = _CALLBACK_PLANS.get(key)
    if table is None:
        by_type: dict[str, list[int]] = {}
        for index, event_types in enumerate(key):
            for event_type in event_types:
                by_type.setdefault(event_type, []).append(index)
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        table = {
            event_type: shared.setdefault(tuple(indexes), tuple(indexes))
            for event_type, indexes in by_type.items()
        }
        if len(_CALLBACK_PLANS) < _MAX_PLANS:
            _CALLBACK_PLANS[key] = table
    return table
