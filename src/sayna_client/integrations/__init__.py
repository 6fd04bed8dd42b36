"""Adapters that put a Sayna session inside voice-agent frameworks.

Each adapter is an optional extra, imported on its own so the core package never needs it:

- :mod:`sayna_client.integrations.pipecat`: ``SaynaSTTService`` and ``SaynaTTSService`` for
  Pipecat (``pip install 'sayna-client[pipecat]'``, Python 3.11+).
- :mod:`sayna_client.integrations.livekit`: ``STT`` and ``TTS`` for LiveKit Agents
  (``pip install 'sayna-client[livekit]'``, Python 3.10+).

Both are built on the public ``SaynaClient`` API only.
"""
