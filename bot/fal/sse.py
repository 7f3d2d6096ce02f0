"""A line-fed parser for server-sent events: turns `data:` lines into event payloads."""

from __future__ import annotations


class EventParser:
    """Joins `data:` lines until a blank line ends an event; skips comments and other fields."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Feed one line (without its newline); return an event's data when this line ends one."""
        line = line.rstrip("\r")
        if not line:
            return self.flush()
        if line.startswith(":"):
            # Keep-alive comments; they only prove the connection is alive.
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def flush(self) -> str | None:
        """Return pending data when the stream ends without the final blank line."""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data = []
        return data
