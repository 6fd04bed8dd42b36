"""The WebSocket session: connection + ready, reader task, heartbeat, event fan-out."""
