"""A small aiohttp listener beside the bot: the health endpoint, the webhook receiver."""

from __future__ import annotations

import logging

from aiohttp import web

log = logging.getLogger(__name__)


class Listener:
    """Serves one aiohttp application on a host and port (port 0: any free one) until closed."""

    def __init__(self, app: web.Application, *, host: str, port: int, what: str) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._what = what
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when started with port 0)."""
        return self._port

    @property
    def base_url(self) -> str:
        """Where this machine reaches it, e.g. http://127.0.0.1:8080."""
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self._port}"

    async def start(self) -> None:
        """Start listening."""
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.info("%s on %s", self._what, self.base_url)

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
