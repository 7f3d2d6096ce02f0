"""The fake gateway: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME, events."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .fake import FakeDiscord

_log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, RESUME, RECONNECT, REQUEST_MEMBERS = 0, 1, 2, 3, 6, 7, 8
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

# Events a session gets only with the matching intent (others always arrive).
_EVENT_INTENTS = {
    "CHANNEL_CREATE": INTENT_GUILDS,
    "CHANNEL_UPDATE": INTENT_GUILDS,
    "CHANNEL_DELETE": INTENT_GUILDS,
    "GUILD_ROLE_CREATE": INTENT_GUILDS,
    "GUILD_ROLE_UPDATE": INTENT_GUILDS,
    "GUILD_CREATE": INTENT_GUILDS,
    "GUILD_DELETE": INTENT_GUILDS,
    "GUILD_MEMBER_ADD": INTENT_GUILD_MEMBERS,
}
_BACKLOG = 1000


@dataclass(frozen=True)
class GatewayFrame:
    """One gateway frame sent or received; IDENTIFY/RESUME tokens are replaced by a flag."""

    direction: str
    op: int | None
    t: str | None
    data: Any
    session_id: str | None
    at: datetime


@dataclass
class GatewaySession:
    """A bot's gateway session; it outlives its websocket so that RESUME can pick it up again."""

    session_id: str
    intents: int
    shard: tuple[int, int] | None
    identified_at: datetime
    seq: int = 0
    resumes: int = 0
    ws: web.WebSocketResponse | None = None
    backlog: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_BACKLOG))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def connected(self) -> bool:
        """Whether a websocket is attached and open."""
        return self.ws is not None and not self.ws.closed

    def handles_guild(self, guild_id: int | None) -> bool:
        """Whether this session's shard receives the guild's events (DMs go to shard 0)."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % count == shard_id

    def wants(self, event: str, *, dm: bool = False) -> bool:
        """Whether the session's intents ask for this event."""
        if event.startswith("MESSAGE_"):
            message_intent = INTENT_DIRECT_MESSAGES if dm else INTENT_GUILD_MESSAGES
            return bool(self.intents & message_intent)
        needed = _EVENT_INTENTS.get(event)
        return needed is None or bool(self.intents & needed)


class Gateway:
    """Serves the websocket at /gateway for every bot connection over the fake's lifetime."""

    def __init__(self, fake: FakeDiscord, *, heartbeat_interval_ms: int = 41250) -> None:
        self._fake = fake
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, GatewaySession] = {}
        self.frames: list[GatewayFrame] = []
        self._sockets: set[web.WebSocketResponse] = set()

    def connected_sessions(self) -> list[GatewaySession]:
        """Sessions with an open websocket, oldest first."""
        return [s for s in self.sessions.values() if s.connected]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Run one websocket connection until it closes."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        session: GatewaySession | None = None
        try:
            await self._send(
                ws, None, {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}
            )
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    # Only plain JSON text frames are spoken here (no ETF, no zlib from clients).
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                try:
                    frame = json.loads(message.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                session = await self._receive(ws, session, frame)
        finally:
            self._sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
            await self._fake._changed()
        return ws

    async def close(self) -> None:
        """Close every open websocket (going away), so bots notice the fake is gone."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake Discord shutting down")

    async def dispatch(self, session: GatewaySession, event: str, data: Any) -> None:
        """Send a DISPATCH event on a session, or keep it in the backlog for a RESUME."""
        async with session.lock:
            session.seq += 1
            frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
            session.backlog.append(frame)
            if session.connected:
                assert session.ws is not None
                await self._send(session.ws, session, frame)

    async def broadcast(self, guild_id: int | None, event: str, data: Any) -> None:
        """Send an event to every connected session that handles the guild and wants it."""
        for session in self.connected_sessions():
            if session.handles_guild(guild_id) and session.wants(event, dm=guild_id is None):
                await self.dispatch(session, event, data)

    async def send_reconnect(self) -> None:
        """Ask every connected bot to reconnect and RESUME (op 7)."""
        for session in self.connected_sessions():
            assert session.ws is not None
            await self._send(session.ws, session, {"op": RECONNECT, "d": None})

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every bot websocket with a close code (4000 lets discord.py resume)."""
        for session in self.connected_sessions():
            assert session.ws is not None
            await session.ws.close(code=code, message=b"dropped by the test")

    async def _receive(
        self, ws: web.WebSocketResponse, session: GatewaySession | None, frame: dict[str, Any]
    ) -> GatewaySession | None:
        op = frame.get("op")
        data = frame.get("d")
        self._record("in", op, None, _without_token(data), session)
        if op == HEARTBEAT:
            await self._send(ws, session, {"op": HEARTBEAT_ACK, "d": None})
        elif op == IDENTIFY:
            if session is not None:
                await ws.close(code=4005, message=b"Already authenticated.")
                return session
            return await self._identify(ws, data or {})
        elif op == RESUME:
            return await self._resume(ws, data or {})
        elif session is None:
            await ws.close(code=4003, message=b"Not authenticated.")
        elif op == REQUEST_MEMBERS:
            await self._members_chunk(session, data or {})
        elif op != PRESENCE:
            _log.warning("fake Discord gateway: unhandled op %s", op)
        return session

    async def _identify(
        self, ws: web.WebSocketResponse, data: dict[str, Any]
    ) -> GatewaySession | None:
        if not self._fake._token_ok(data.get("token")):
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        shard = data.get("shard")
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            intents=int(data.get("intents") or 0),
            shard=(int(shard[0]), int(shard[1])) if shard else None,
            identified_at=self._fake.now(),
            ws=ws,
        )
        self.sessions[session.session_id] = session
        await self._fake._ready_allowed()
        await self.dispatch(session, "READY", self._fake._ready_payload(session))
        for guild in self._fake.bot_guilds():
            if session.handles_guild(guild.id) and session.intents & INTENT_GUILDS:
                await self.dispatch(
                    session, "GUILD_CREATE", self._fake._guild_create_payload(guild)
                )
        await self._fake._changed()
        return session

    async def _resume(
        self, ws: web.WebSocketResponse, data: dict[str, Any]
    ) -> GatewaySession | None:
        session = self.sessions.get(str(data.get("session_id")))
        if not self._fake._token_ok(data.get("token")):
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        if session is None or session.connected:
            # Not resumable: discord.py then starts over with a fresh IDENTIFY.
            await self._send(ws, None, {"op": INVALID_SESSION, "d": False})
            return None
        session.ws = ws
        session.resumes += 1
        seen = int(data.get("seq") or 0)
        async with session.lock:
            for frame in list(session.backlog):
                if frame["s"] > seen:
                    await self._send(ws, session, frame)
        await self.dispatch(session, "RESUMED", {})
        await self._fake._changed()
        return session

    async def _members_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild = self._fake.world.guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        members = [self._fake.world.member_payload(guild, uid) for uid in guild.members]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self.dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send(
        self, ws: web.WebSocketResponse, session: GatewaySession | None, frame: dict[str, Any]
    ) -> None:
        self._record("out", frame.get("op"), frame.get("t"), frame.get("d"), session)
        if not ws.closed:
            await ws.send_str(json.dumps(frame))

    def _record(
        self, direction: str, op: Any, t: str | None, data: Any, session: GatewaySession | None
    ) -> None:
        self.frames.append(
            GatewayFrame(
                direction=direction,
                op=op if isinstance(op, int) else None,
                t=t,
                data=data,
                session_id=session.session_id if session else None,
                at=self._fake.now(),
            )
        )


def _without_token(data: Any) -> Any:
    if isinstance(data, dict) and "token" in data:
        cleaned = dict(data)
        cleaned["token"] = "<sent>" if data.get("token") else None
        return cleaned
    return data
