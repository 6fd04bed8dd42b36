"""Helpers shared by the whole test suite (importable as ``helpers``: ``tests/`` is on
``sys.path`` under pytest's default import mode).

- :mod:`helpers.waiting`: :func:`~helpers.waiting.eventually`, the one way a test waits
  for something that has no event of its own.
- :mod:`helpers.internals`: the one module that reads the client's private attributes,
  for the white-box wire and lifecycle tests.
- :mod:`helpers.wire`: raw WebSocket helpers (what a client of any language sends).
- :mod:`helpers.serve`: :func:`~helpers.serve.sayna_serve`, ``sayna serve`` in a subprocess
  (started, waited for by its banner, always stopped).
- :mod:`helpers.devices`: a stand-in ``sounddevice`` module whose streams cannot be
  opened (a busy sound card), for machines without PortAudio.
"""
