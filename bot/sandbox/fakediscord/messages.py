"""Messages and attachments as Discord stores them: create, edit, delete, render, and CDN bytes."""

from __future__ import annotations

import mimetypes
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .errors import ApiError, invalid_form
from .records import (
    EPHEMERAL,
    LOADING,
    FakeInteraction,
    Payload,
    StoredAttachment,
    StoredMessage,
    UploadedFile,
    Via,
)
from .world import Channel, Snowflakes, World, iso

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_ATTACHMENTS = 10
SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
# Flags a sender may set on a new message (ephemeral only through interactions).
_SETTABLE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2 | EPHEMERAL


class MessageStore:
    """Every message of the fake, by id and by channel, and the CDN's files."""

    def __init__(
        self,
        world: World,
        snowflakes: Snowflakes,
        clock: Callable[[], datetime],
        cdn_base: Callable[[], str],
    ) -> None:
        self._world = world
        self._snowflakes = snowflakes
        self._clock = clock
        self._cdn_base = cdn_base
        self.by_id: dict[int, StoredMessage] = {}
        self.by_channel: dict[int, list[StoredMessage]] = {}
        self.cdn: dict[str, StoredAttachment] = {}
        self.interactions_by_message: dict[int, FakeInteraction] = {}

    # Attachments and the CDN

    def store_attachment(
        self,
        data: bytes,
        filename: str,
        *,
        channel_id: int,
        content_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
        ephemeral: bool = False,
        description: str | None = None,
        title: str | None = None,
    ) -> StoredAttachment:
        """Keep bytes under a CDN URL shaped like Discord's (signed query included)."""
        attachment_id = self._snowflakes.next()
        folder = "ephemeral-attachments" if ephemeral else "attachments"
        path = f"/{folder}/{channel_id}/{attachment_id}/{quote(filename)}"
        now = int(self._clock().timestamp())
        signature = f"?ex={now + 86400:x}&is={now:x}&hm={secrets.token_hex(32)}&"
        attachment = StoredAttachment(
            id=attachment_id,
            filename=filename,
            data=data,
            url=self._cdn_base() + path + signature,
            content_type=content_type or _guess_type(filename),
            width=width,
            height=height,
            ephemeral=ephemeral,
            description=description,
            title=title,
        )
        self.cdn[path] = attachment
        return attachment

    def cdn_lookup(self, path: str) -> StoredAttachment | None:
        """The attachment served at a CDN path (query ignored)."""
        return self.cdn.get(path)

    # Messages

    def in_channel(self, channel_id: int) -> list[StoredMessage]:
        """All messages of a channel in creation order, deleted and ephemeral ones included."""
        return list(self.by_channel.get(channel_id, []))

    def create(
        self,
        channel: Channel,
        author_id: int,
        body: Payload,
        files: Sequence[UploadedFile],
        *,
        via: Via,
        size_limit: int,
        interaction: FakeInteraction | None = None,
        extra_flags: int = 0,
        allow_empty: bool = False,
    ) -> StoredMessage:
        """A new message from a create body (and uploaded files); raises ApiError like Discord."""
        attachments = self._new_attachments(channel, body, files, size_limit, keep=[])
        flags = (int(body.get("flags") or 0) & _SETTABLE_FLAGS) | extra_flags
        if interaction is None:
            flags &= ~EPHEMERAL
        message = StoredMessage(
            id=self._snowflakes.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=author_id,
            content=_content(body),
            created_at=self._clock(),
            via=via,
            embeds=_embeds(body),
            components=_components(body),
            attachments=attachments,
            flags=flags,
            allowed_mentions=body.get("allowed_mentions"),
            tts=bool(body.get("tts")),
            interaction_id=interaction.id if interaction else None,
            message_reference=body.get("message_reference"),
            nonce=None if body.get("nonce") is None else str(body["nonce"]),
        )
        if interaction is not None and interaction.type == 2:
            data = interaction.payload.get("data", {})
            message.type = 20 if data.get("type", 1) == 1 else 23
        elif message.message_reference:
            message.type = 19
        if not allow_empty and _is_empty(message):
            raise ApiError(400, 50006, "Cannot send an empty message")
        self.by_id[message.id] = message
        self.by_channel.setdefault(channel.id, []).append(message)
        channel.last_message_id = message.id
        if interaction is not None:
            self.interactions_by_message[message.id] = interaction
        return message

    def by_nonce(self, author_id: int, nonce: str, since: datetime) -> StoredMessage | None:
        """The message this author created with this nonce since `since` (enforce_nonce)."""
        for message in reversed(list(self.by_id.values())):
            if message.created_at < since:
                break
            if message.author_id == author_id and message.nonce == nonce and not message.deleted:
                return message
        return None

    def edit(
        self,
        message: StoredMessage,
        body: Payload,
        files: Sequence[UploadedFile],
        *,
        size_limit: int,
        resolve_loading: bool = False,
        record_edit: bool = True,
    ) -> StoredMessage:
        """Apply an edit body; the previous state goes to the history if `record_edit`."""
        channel = self._world.channels[message.channel_id]
        before = message.snapshot()
        if "attachments" in body and body["attachments"] is not None:
            keep_ids = {int(a["id"]) for a in body["attachments"] if _is_existing(a, message)}
            keep = [a for a in message.attachments if a.id in keep_ids]
        else:
            keep = list(message.attachments)
        attachments = self._new_attachments(channel, body, files, size_limit, keep=keep)
        if "content" in body:
            message.content = _content(body)
        if "embeds" in body:
            message.embeds = _embeds(body)
        if "components" in body:
            message.components = _components(body)
        if "allowed_mentions" in body:
            message.allowed_mentions = body.get("allowed_mentions")
        if body.get("flags") is not None:
            suppress = int(body["flags"]) & SUPPRESS_EMBEDS
            message.flags = (message.flags & ~SUPPRESS_EMBEDS) | suppress
        if resolve_loading:
            message.flags &= ~LOADING
        message.attachments = attachments
        if _is_empty(message):
            raise ApiError(400, 50006, "Cannot send an empty message")
        if record_edit:
            message.history.append(before)
            message.edited_at = self._clock()
        return message

    def delete(self, message: StoredMessage) -> None:
        """Mark a message deleted (it stays in the records)."""
        message.deleted = True

    def payload(self, message: StoredMessage) -> Payload:
        """The message object as the API returns it."""
        author = self._world.users[message.author_id]
        payload: Payload = {
            "id": str(message.id),
            "type": message.type,
            "channel_id": str(message.channel_id),
            "author": author.to_payload(),
            "content": message.content,
            "timestamp": iso(message.created_at),
            "edited_timestamp": iso(message.edited_at) if message.edited_at else None,
            "tts": message.tts,
            "mention_everyone": message.pings.everyone,
            "mentions": [
                self._world.users[u].to_payload()
                for u in sorted(message.pings.users)
                if u in self._world.users
            ],
            "mention_roles": [str(r) for r in sorted(message.pings.roles)],
            "attachments": [a.to_payload() for a in message.attachments],
            "embeds": message.embeds,
            "pinned": False,
            "flags": message.flags,
            "components": message.components,
        }
        if message.guild_id is not None:
            payload["guild_id"] = str(message.guild_id)
        if message.message_reference:
            payload["message_reference"] = message.message_reference
        if message.nonce is not None:
            payload["nonce"] = message.nonce
        interaction = self.interactions_by_message.get(message.id)
        if interaction is not None:
            user = self._world.users[interaction.user_id].to_payload()
            payload["webhook_id"] = str(author.id)
            payload["application_id"] = str(author.id)
            metadata: Payload = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": user,
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
            if interaction.original is not None and interaction.original is not message:
                metadata["original_response_message_id"] = str(interaction.original.id)
            if interaction.source_message is not None:
                metadata["interacted_message_id"] = str(interaction.source_message.id)
            payload["interaction_metadata"] = metadata
            if interaction.type == 2:
                name = interaction.payload.get("data", {}).get("name", "")
                payload["interaction"] = {
                    "id": str(interaction.id),
                    "type": 2,
                    "name": name,
                    "user": user,
                }
        return payload

    def _new_attachments(
        self,
        channel: Channel,
        body: Payload,
        files: Sequence[UploadedFile],
        size_limit: int,
        *,
        keep: list[StoredAttachment],
    ) -> list[StoredAttachment]:
        for upload in files:
            if len(upload.data) > size_limit:
                raise ApiError(
                    413,
                    40005,
                    f"Request entity too large ({upload.filename}: {len(upload.data)} bytes)",
                )
        by_index = {str(i): f for i, f in enumerate(files)}
        by_field = {f.field: f for f in files}
        specs = [a for a in body.get("attachments") or [] if isinstance(a, dict)]
        new: list[StoredAttachment] = []
        used: set[str] = set()
        for spec in specs:
            found = by_field.get(f"files[{spec.get('id')}]") or by_index.get(str(spec.get("id")))
            if found is None or found.field in used:
                continue
            used.add(found.field)
            new.append(self._from_upload(channel, found, spec))
        # Files the payload did not describe are attached too, as Discord does.
        for upload in files:
            if upload.field not in used:
                new.append(self._from_upload(channel, upload, {}))
        result = keep + new
        if len(result) > MAX_ATTACHMENTS:
            raise invalid_form(
                "attachments", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."
            )
        return result

    def _from_upload(
        self, channel: Channel, upload: UploadedFile, spec: Payload
    ) -> StoredAttachment:
        filename = str(spec.get("filename") or upload.filename)
        content_type = upload.content_type
        if content_type in (None, "application/octet-stream"):
            content_type = _guess_type(filename)
        attachment = self.store_attachment(
            upload.data,
            filename,
            channel_id=channel.id,
            content_type=content_type,
            description=spec.get("description"),
            title=spec.get("title"),
        )
        return attachment


def _guess_type(filename: str) -> str | None:
    return mimetypes.guess_type(filename)[0]


def _is_existing(spec: Any, message: StoredMessage) -> bool:
    if not isinstance(spec, dict) or spec.get("id") is None:
        return False
    try:
        wanted = int(spec["id"])
    except (TypeError, ValueError):
        return False
    return any(a.id == wanted for a in message.attachments)


def _content(body: Payload) -> str:
    content = body.get("content")
    text = "" if content is None else str(content)
    if len(text) > MAX_CONTENT:
        raise invalid_form(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    return text


def _embeds(body: Payload) -> list[Payload]:
    embeds = [dict(e) for e in body.get("embeds") or []]
    if len(embeds) > MAX_EMBEDS:
        raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    for embed in embeds:
        embed.setdefault("type", "rich")
    return embeds


def _components(body: Payload) -> list[Payload]:
    components: list[Payload] = [dict(c) for c in body.get("components") or []]
    counter = [0]

    def number(items: list[Payload]) -> list[Payload]:
        numbered = []
        for item in items:
            item = dict(item)
            counter[0] += 1
            item.setdefault("id", counter[0])
            if isinstance(item.get("components"), list):
                item["components"] = number(item["components"])
            for key in ("component", "accessory"):
                if isinstance(item.get(key), dict):
                    item[key] = number([item[key]])[0]
            numbered.append(item)
        return numbered

    # Discord numbers components that came without an id, depth first.
    return number(components)


def _is_empty(message: StoredMessage) -> bool:
    return (
        not (message.content or message.embeds or message.attachments or message.components)
        and not message.loading
    )
