"""Interactions a test drives in the fake Discord: slash and menu commands, clicks, modals."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .commands import CHAT_INPUT, MESSAGE_COMMAND, build_chat_input
from .errors import CommandMismatch, FakeDiscordError
from .records import FakeInteraction, Payload, StoredMessage
from .state import FakeState
from .world import ADMINISTRATOR, DM, Channel, User


class Interactions(FakeState):
    """What a member does in the client, sent to the bot as INTERACTION_CREATE."""

    async def command(
        self,
        user: User | int,
        channel: Channel | int,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
        created_at: datetime | None = None,
    ) -> FakeInteraction:
        """Invoke a synced slash command ("pika text", options by name) as a member; raises
        CommandMismatch if the bot did not sync that command/option or would reject the value."""
        user_obj, channel_obj = self._user(user), self._live_channel(channel)
        parts = name.split()
        command = self.commands.find(parts[0], CHAT_INPUT, channel_obj.guild_id)
        self._check_can_use(command, channel_obj, user_obj)
        built = build_chat_input(
            command,
            parts[1:],
            options or {},
            world=self.world,
            channel=channel_obj,
            user_id=user_obj.id,
        )
        data: Payload = {"id": command["id"], "name": command["name"], "type": CHAT_INPUT}
        if built.options:
            data["options"] = built.options
        if built.resolved:
            data["resolved"] = built.resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._interact(
            2, user_obj, channel_obj, data, locale=locale, created_at=created_at
        )

    async def message_command(
        self,
        user: User | int,
        channel: Channel | int,
        name: str,
        target_message: StoredMessage | int,
        *,
        locale: str = "en-US",
        created_at: datetime | None = None,
    ) -> FakeInteraction:
        """Invoke a synced message context-menu command on a message."""
        user_obj, channel_obj = self._user(user), self._live_channel(channel)
        target = self._message(target_message)
        command = self.commands.find(name, MESSAGE_COMMAND, channel_obj.guild_id)
        self._check_can_use(command, channel_obj, user_obj)
        data: Payload = {
            "id": command["id"],
            "name": command["name"],
            "type": MESSAGE_COMMAND,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): self.store.payload(target)}},
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._interact(
            2, user_obj, channel_obj, data, locale=locale, created_at=created_at
        )

    async def click(
        self,
        user: User | int,
        message: StoredMessage | int,
        custom_id: str,
        *,
        values: Sequence[str] = (),
        locale: str = "en-US",
        created_at: datetime | None = None,
    ) -> FakeInteraction:
        """Press a button (or pick select `values`) on a stored message; the click echoes it."""
        target = self._message(message)
        if target.deleted:
            raise FakeDiscordError(f"message {target.id} is deleted")
        component = target.find_component(custom_id)
        if component is None:
            raise FakeDiscordError(
                f"message {target.id} has no component with custom_id {custom_id!r}"
            )
        if component.get("disabled"):
            raise FakeDiscordError(f"component {custom_id!r} is disabled")
        data: Payload = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] != 2:
            data["values"] = list(values)
        channel = self._live_channel(target.channel_id)
        return await self._interact(
            3,
            self._user(user),
            channel,
            data,
            message=target,
            locale=locale,
            created_at=created_at,
        )

    async def submit_modal(
        self,
        user: User | int,
        opened_by: FakeInteraction,
        custom_id: str | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
        created_at: datetime | None = None,
    ) -> FakeInteraction:
        """Submit the modal the bot opened in answer to `opened_by`, with values by input custom_id
        (str for text inputs, lists of str for selects, lists of fake.attachment() for uploads)."""
        modal = opened_by.modal
        if modal is None:
            raise FakeDiscordError(f"the bot opened no modal for interaction {opened_by.id}")
        if custom_id is not None and custom_id != modal["custom_id"]:
            raise FakeDiscordError(
                f"the bot's modal has custom_id {modal['custom_id']!r}, not {custom_id!r}"
            )
        given = dict(values or {})
        resolved: dict[str, dict[str, Payload]] = {}
        components = [_submitted(c, given, resolved) for c in modal["components"]]
        if given:
            raise FakeDiscordError(f"the modal has no inputs named {sorted(given)}")
        data: Payload = {"custom_id": modal["custom_id"], "components": components}
        if resolved:
            data["resolved"] = resolved
        channel = self._live_channel(opened_by.channel_id)
        return await self._interact(
            5,
            self._user(user),
            channel,
            data,
            message=opened_by.source_message,
            locale=locale,
            created_at=created_at,
        )

    def interaction_by_token(self, token: str) -> FakeInteraction | None:
        """The interaction a webhook token belongs to."""
        return self._by_token.get(token)

    async def _interact(
        self,
        itype: int,
        user: User,
        channel: Channel,
        data: Payload,
        *,
        message: StoredMessage | None = None,
        locale: str,
        created_at: datetime | None,
    ) -> FakeInteraction:
        created = created_at or self.now()
        interaction_id = self.snowflakes.next(created)
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        guild = self.world.guild_of(channel)
        payload: Payload = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "app_permissions": str(self.world.channel_permissions(channel, self.bot_user.id)),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.world.attachment_size_limit(channel),
            "channel_id": str(channel.id),
            "context": 0 if guild else 1,
            "authorizing_integration_owners": {"0": str(guild.id) if guild else "0"},
        }
        if guild is not None:
            if user.id not in guild.members:
                raise FakeDiscordError(f"{user.username} is not a member of {guild.name}")
            permissions = self.world.channel_permissions(channel, user.id)
            channel_payload = channel.to_payload()
            channel_payload["permissions"] = str(permissions)
            payload.update(
                {
                    "guild_id": str(guild.id),
                    "guild": {
                        "id": str(guild.id),
                        "locale": guild.preferred_locale,
                        "features": [],
                    },
                    "guild_locale": guild.preferred_locale,
                    "member": self.world.member_payload(guild, user.id, permissions),
                    "channel": channel_payload,
                }
            )
        else:
            payload["user"] = user.to_payload()
            payload["channel"] = self.dm_payload(channel)
        if message is not None:
            payload["message"] = self.store.payload(message)
        session = self._session_for(guild.id if guild else None)
        interaction = FakeInteraction(
            id=interaction_id,
            token=token,
            type=itype,
            payload=payload,
            created_at=created,
            user_id=user.id,
            channel_id=channel.id,
            guild_id=guild.id if guild else None,
            source_message=message,
        )
        self.interactions[interaction_id] = interaction
        self._by_token[token] = interaction
        await self.gateway.dispatch(session, "INTERACTION_CREATE", payload)
        await self._changed()
        return interaction

    def _check_can_use(self, command: Payload, channel: Channel, user: User) -> None:
        context = 1 if channel.type == DM else 0
        contexts = command.get("contexts")
        if contexts is not None and context not in contexts:
            raise CommandMismatch(f"{command['name']!r} is not available in context {context}")
        if context == 1 and command.get("dm_permission") is False:
            raise CommandMismatch(f"{command['name']!r} is not available in DMs")
        required = command.get("default_member_permissions")
        if context == 0 and required is not None:
            have = self.world.channel_permissions(channel, user.id)
            needed = int(required)
            if have & needed != needed and not have & ADMINISTRATOR:
                raise CommandMismatch(
                    f"{command['name']!r} is hidden from {user.username} "
                    f"(default_member_permissions={needed})"
                )


def _submitted(
    component: Payload, given: dict[str, Any], resolved: dict[str, dict[str, Payload]]
) -> Payload:
    """The modal-submit form of one modal component, consuming values from `given`."""
    ctype = component.get("type")
    out: Payload = {"type": ctype}
    if "id" in component:
        out["id"] = component["id"]
    if ctype == 1:
        out["components"] = [
            _submitted(c, given, resolved) for c in component.get("components", [])
        ]
        return out
    if ctype == 18:
        out["component"] = _submitted(component["component"], given, resolved)
        return out
    custom_id = component.get("custom_id")
    if custom_id is None:
        return out
    out["custom_id"] = custom_id
    required = component.get("required", True)
    if ctype == 4:
        value = given.pop(custom_id, component.get("value") or "")
        if not isinstance(value, str):
            raise FakeDiscordError(f"text input {custom_id!r} takes a str, got {value!r}")
        if required and not value:
            raise FakeDiscordError(f"text input {custom_id!r} is required")
        low, high = component.get("min_length", 0), component.get("max_length", 4000)
        if value and not low <= len(value) <= high:
            raise FakeDiscordError(f"text input {custom_id!r}: length must be {low}..{high}")
        out["value"] = value
    elif ctype == 19:
        uploads = list(given.pop(custom_id, []))
        if required and not uploads:
            raise FakeDiscordError(f"file upload {custom_id!r} is required")
        for upload in uploads:
            resolved.setdefault("attachments", {})[str(upload["id"])] = dict(upload)
        out["values"] = [str(u["id"]) for u in uploads]
    else:
        out["values"] = [str(v) for v in given.pop(custom_id, [])]
        out["component_type"] = ctype
    return out
