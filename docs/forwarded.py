"""mkdocs hook: the names ``SaynaClient`` forwards to its voice session, on its page.

mkdocstrings reads the code statically, so it cannot see that ``SaynaClient.speak`` is
``Speaking.speak`` (``_forward.forward``) or what ``client.stt_config`` holds
(``ForwardAttribute``, ``ReadyField``). This hook writes, where ``clients.md`` has the
marker, one entry per forwarded name in the class's own order: a method is rendered by
mkdocstrings from the part's function, under the heading ``SaynaClient.<name>``; an
attribute is its documented text, type and access. ``tests/test_examples.py`` checks
that the built page has every forwarded name.
"""

from __future__ import annotations

import re
from typing import Any

MARKER = "<!-- forwarded names -->"
#: A Sphinx cross-reference in a docstring (``:class:`~sayna_client.agents.BargeIn```).
_ROLE = re.compile(r":\w+:`~?([\w.]+)`")


def forwarded_names() -> list[tuple[str, Any]]:
    """``(name, descriptor)`` of every name ``SaynaClient`` forwards, in class order."""
    from sayna_client import SaynaClient
    from sayna_client._forward import ForwardAttribute, ReadyField, is_forward

    kinds = (ForwardAttribute, ReadyField)
    return [
        (name, value)
        for name, value in vars(SaynaClient).items()
        if is_forward(value) or isinstance(value, kinds)
    ]


def forwarded_markdown(level: int = 3) -> str:
    """The markdown of every forwarded name (mkdocstrings directives for the methods)."""
    from sayna_client._forward import ForwardAttribute, is_forward

    parts = []
    for name, value in forwarded_names():
        if is_forward(value):
            function = value.__wrapped__
            parts.append(
                f"::: {function.__module__}.{function.__qualname__}\n"
                "    options:\n"
                f'      heading: "SaynaClient.{name}"\n'
                f"      heading_level: {level}\n"
                "      show_root_heading: true\n"
            )
            continue
        if isinstance(value, ForwardAttribute):  # made as ForwardAttribute[T](...)
            kind = _type_name(value.__orig_class__.__args__[0])  # type: ignore[attr-defined]
        else:  # a field of the ready message
            kind = "Optional[str]"
        writable = isinstance(value, ForwardAttribute) and value.writable
        access = "read and write" if writable else "read-only"
        doc = _ROLE.sub(
            lambda m: f"``{m.group(1).split('.')[-1]}``", " ".join(value.__doc__.split())
        )
        parts.append(f"{'#' * level} SaynaClient.{name}\n\n`{kind}`, {access}. {doc}\n")
    return "\n".join(parts)


def _type_name(kind: Any) -> str:
    """``Optional[STTConfig]`` for ``typing.Optional[sayna_client.types.config.STTConfig]``."""
    text = kind.__name__ if isinstance(kind, type) else repr(kind)
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", text)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace the marker of ``clients.md`` with the forwarded names."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, forwarded_markdown())
