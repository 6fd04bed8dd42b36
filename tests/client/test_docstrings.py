"""Every public class says what it is: a docstring of its own, not one inherited."""

from __future__ import annotations

import inspect

import sayna_client


def test_every_public_class_has_its_own_docstring() -> None:
    classes = [
        (name, obj)
        for name in sayna_client.__all__
        if inspect.isclass(obj := getattr(sayna_client, name))
    ]
    assert len(classes) > 50  # the walk found the models, errors and clients
    missing = [name for name, cls in classes if not (cls.__dict__.get("__doc__") or "").strip()]
    assert missing == []
