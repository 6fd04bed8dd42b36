"""The public models' construction errors, in the SDK's terms.

Building a config with a bad value (``STTConfig(provider=1)``) or assigning one
(``config.sample_rate = "fast"``) raises :class:`~sayna_client.ModelValidationError`
(defined in ``errors.py`` with the other errors): a
:class:`~sayna_client.SaynaValidationError` whose one-line message names the model, the
field, the expected type and the type given (never the value: it may be a key). It is
also a ``pydantic.ValidationError`` carrying the same ``errors()``, so code that
catches pydantic's error keeps working; its ``errors()`` and ``json()`` leave the
values given out unless asked for them (``include_input=True``), so logging them
prints no key. ``model_validate`` and ``model_validate_json`` are pydantic's own and
raise pydantic's error, as they always have.
"""

from __future__ import annotations

from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

# ModelValidationError lives with the other errors; importable from here as before.
from ..errors import ModelValidationError

__all__ = ["CheckedModel", "ModelValidationError", "describe", "model_error"]

#: Problems spelled out in the message; the rest are counted.
MAX_SHOWN = 3


def model_error(exc: ValidationError, model: type[BaseModel]) -> ValidationError:
    """``exc`` as a :class:`ModelValidationError` for ``model`` (``exc`` itself when this
    pydantic cannot build the subclass)."""
    try:
        error = ModelValidationError.from_exception_data(
            exc.title,
            exc.errors(),  # type: ignore[arg-type]
            hide_input=True,
        )
    except (TypeError, ValueError, KeyError):  # an older pydantic-core: keep its error
        return exc
    if not isinstance(error, ModelValidationError):
        return exc
    error.message = describe(exc, model)
    return error


def _field(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _is_union(model: type[BaseModel], name: Any) -> bool:
    """Whether field ``name`` of ``model`` takes one of several types (its errors then
    come one per member, located by the member's name)."""
    field = model.model_fields.get(name) if isinstance(name, str) else None
    if field is None:
        return False
    members = [a for a in get_args(field.annotation) if a is not type(None)]
    return get_origin(field.annotation) is Union and len(members) > 1


def _problem(name: str, model: type[BaseModel], err: Any) -> str:
    loc = tuple(err["loc"])
    field = _field(loc)
    where = f"{name}.{field}" if field else name
    kind = err["type"]
    if kind in ("extra_forbidden", "no_such_attribute"):  # built with / assigned a typo
        if len(loc) == 1:
            known = ", ".join(model.model_fields)
            return f"{name} has no field {field!r} (its fields: {known})"
        return f"{name}.{_field(loc[:-1])} has no field {loc[-1]!r}"
    if kind == "missing":
        return f"{where} is required"
    expected = str(err["msg"])
    if expected.startswith("Input should be "):
        expected = "must be " + expected[len("Input should be ") :]
    elif expected.startswith("Value error, "):
        expected = expected[len("Value error, ") :]
    else:
        expected = expected[:1].lower() + expected[1:]
    return f"{where}: {expected} (got {type(err.get('input')).__name__})"


def describe(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line naming each problem of ``exc``: field, expectation, the type given."""
    name = model.__name__
    # A union field's errors (one per member type) become one problem, in its place.
    entries: list[Union[str, tuple[str, str]]] = []
    unions: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if len(loc) >= 2 and _is_union(model, loc[0]) and isinstance(loc[1], str):
            members = unions.setdefault(str(loc[0]), [])
            if not members:
                entries.append((str(loc[0]), type(err.get("input")).__name__))
            if loc[1] not in members:
                members.append(loc[1])
        else:
            entries.append(_problem(name, model, err))
    problems = [
        entry
        if isinstance(entry, str)
        else f"{name}.{entry[0]}: must be one of {', '.join(unions[entry[0]])} (got {entry[1]})"
        for entry in entries
    ]
    shown = problems[:MAX_SHOWN]
    if len(problems) > MAX_SHOWN:
        shown.append(f"and {len(problems) - MAX_SHOWN} more")
    return "; ".join(shown)


class CheckedModel(BaseModel):
    """A model whose construction and assignment errors are :class:`ModelValidationError`."""

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise model_error(exc, type(self)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise model_error(exc, type(self)) from None
