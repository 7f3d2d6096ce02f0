"""The application commands the bot synced, and interaction data built strictly from them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import CommandMismatch, invalid_form
from .world import Channel, Payload, Snowflakes, User, World

CHAT_INPUT = 1
USER_COMMAND = 2
MESSAGE_COMMAND = 3

SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)

_CHAT_NAME = re.compile(r"^[-_'\w]{1,32}$")
_OPTION_TYPE_NAMES = {
    SUB_COMMAND: "subcommand",
    SUB_COMMAND_GROUP: "subcommand group",
    STRING: "string",
    INTEGER: "integer",
    BOOLEAN: "boolean",
    USER: "user",
    CHANNEL: "channel",
    ROLE: "role",
    MENTIONABLE: "mentionable",
    NUMBER: "number",
    ATTACHMENT: "attachment",
}


@dataclass
class CommandRegistry:
    """Synced commands by scope (None = global), as the API stored and returned them."""

    application_id: int
    snowflakes: Snowflakes
    scopes: dict[int | None, list[Payload]] = field(default_factory=dict)

    def overwrite(self, guild_id: int | None, commands: list[Payload]) -> list[Payload]:
        """Bulk overwrite one scope, keeping ids of commands that keep their name and type."""
        _check_limits(commands)
        previous = {(c["name"], c.get("type", 1)): c for c in self.scopes.get(guild_id, [])}
        stored = []
        for command in commands:
            ctype = command.get("type") or CHAT_INPUT
            old = previous.get((command["name"], ctype))
            entry: Payload = {
                "id": old["id"] if old else str(self.snowflakes.next()),
                "application_id": str(self.application_id),
                "version": str(self.snowflakes.next()),
                "type": ctype,
                "name": command["name"],
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "default_member_permissions": command.get("default_member_permissions"),
                "dm_permission": command.get("dm_permission", True),
                "nsfw": command.get("nsfw", False),
                "integration_types": command.get("integration_types") or [0],
                "contexts": command.get("contexts"),
            }
            if command.get("options"):
                entry["options"] = command["options"]
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            stored.append(entry)
        self.scopes[guild_id] = stored
        return stored

    def get(self, guild_id: int | None) -> list[Payload]:
        """The commands of one scope."""
        return list(self.scopes.get(guild_id, []))

    def find(self, name: str, ctype: int, guild_id: int | None) -> Payload:
        """A command visible in a guild (guild scope first) or in DMs (global only)."""
        scopes = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.scopes.get(scope, []):
                if command["name"] == name and command["type"] == ctype:
                    return command
        known = sorted(
            f"{c['name']} (type {c['type']})" for s in scopes for c in self.scopes.get(s, [])
        )
        raise CommandMismatch(
            f"the bot synced no type-{ctype} command named {name!r} here; synced: {known}"
        )


def _check_limits(commands: list[Payload]) -> None:
    seen: set[tuple[str, int]] = set()
    for index, command in enumerate(commands):
        ctype = command.get("type") or CHAT_INPUT
        name = str(command.get("name", ""))
        key = (name, ctype)
        if key in seen:
            raise invalid_form(
                f"{index}.name",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique: {name}",
            )
        seen.add(key)
        if ctype == CHAT_INPUT:
            _check_chat_name(f"{index}.name", name)
            _check_options(f"{index}.options", command.get("options") or [])
        elif not 1 <= len(name) <= 32:
            raise invalid_form(f"{index}.name", "BASE_TYPE_BAD_LENGTH", "Must be 1-32 long.")


def _check_chat_name(where: str, name: str) -> None:
    if not _CHAT_NAME.fullmatch(name) or name != name.lower():
        raise invalid_form(
            where, "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}"
        )


def _check_options(where: str, options: list[Payload]) -> None:
    if len(options) > 25:
        raise invalid_form(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for index, option in enumerate(options):
        _check_chat_name(f"{where}.{index}.name", str(option.get("name", "")))
        description = str(option.get("description", ""))
        if not 1 <= len(description) <= 100:
            raise invalid_form(
                f"{where}.{index}.description", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 long."
            )
        if len(option.get("choices") or []) > 25:
            raise invalid_form(
                f"{where}.{index}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer."
            )
        if option.get("choices") and option.get("autocomplete"):
            raise invalid_form(
                f"{where}.{index}.autocomplete",
                "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_AND_CHOICES",
                "Autocomplete cannot be used with choices.",
            )
        if option.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
            _check_options(f"{where}.{index}.options", option.get("options") or [])


@dataclass
class BuiltOptions:
    """The `options` and `resolved` parts of an application command's interaction data."""

    options: list[Payload]
    resolved: dict[str, dict[str, Payload]]


def build_chat_input(
    command: Payload,
    path: list[str],
    given: Mapping[str, Any],
    *,
    world: World,
    channel: Channel,
    user_id: int,
) -> BuiltOptions:
    """Options for `/name sub...` from the synced definition; CommandMismatch on any misfit."""
    resolved: dict[str, dict[str, Payload]] = {}
    options: list[Payload] = command.get("options") or []
    wrappers: list[Payload] = []
    for part in path:
        match = next((o for o in options if o["name"] == part), None)
        if match is None or match.get("type") not in (SUB_COMMAND, SUB_COMMAND_GROUP):
            subs = [o["name"] for o in options if o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)]
            raise CommandMismatch(
                f"/{command['name']} has no subcommand {part!r}; synced subcommands: {subs}"
            )
        wrappers.append({"name": part, "type": match["type"], "options": []})
        options = match.get("options") or []
    if any(o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in options):
        subs = [o["name"] for o in options]
        raise CommandMismatch(
            f"/{' '.join([command['name'], *path])} needs a subcommand, one of {subs}"
        )
    invoker = _Invoker(world, channel, user_id)
    leaf = [
        _option_value(spec, given[spec["name"]], invoker, resolved)
        for spec in options
        if spec["name"] in given
    ]
    unknown = sorted(set(given) - {o["name"] for o in options})
    if unknown:
        raise CommandMismatch(
            f"/{' '.join([command['name'], *path])} has no option(s) {unknown}; "
            f"synced options: {[o['name'] for o in options]}"
        )
    missing = [o["name"] for o in options if o.get("required") and o["name"] not in given]
    if missing:
        raise CommandMismatch(f"required option(s) missing: {missing}")
    # Nest the leaf options inside the subcommand (and group) wrappers, innermost last.
    result = leaf
    for wrapper in reversed(wrappers):
        wrapper["options"] = result
        result = [wrapper]
    return BuiltOptions(options=result, resolved=resolved)


@dataclass(frozen=True)
class _Invoker:
    world: World
    channel: Channel
    user_id: int

    @property
    def guild_id(self) -> int | None:
        return self.channel.guild_id


def _option_value(
    spec: Payload, value: Any, invoker: _Invoker, resolved: dict[str, dict[str, Payload]]
) -> Payload:
    world, guild_id = invoker.world, invoker.guild_id
    name = spec["name"]
    otype = spec["type"]
    label = f"option {name!r} ({_OPTION_TYPE_NAMES.get(otype, otype)})"
    out: Payload = {"name": name, "type": otype}
    if otype == STRING:
        if not isinstance(value, str):
            raise CommandMismatch(f"{label} needs a str, got {value!r}")
        if not spec.get("min_length", 0) <= len(value) <= spec.get("max_length", 6000):
            raise CommandMismatch(f"{label}: length {len(value)} is outside the synced bounds")
        out["value"] = value
    elif otype in (INTEGER, NUMBER):
        ok = isinstance(value, int) if otype == INTEGER else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            raise CommandMismatch(f"{label} needs a number, got {value!r}")
        low, high = spec.get("min_value"), spec.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise CommandMismatch(f"{label}: {value} is outside [{low}, {high}]")
        out["value"] = value
    elif otype == BOOLEAN:
        if not isinstance(value, bool):
            raise CommandMismatch(f"{label} needs a bool, got {value!r}")
        out["value"] = value
    elif otype == ATTACHMENT:
        if not isinstance(value, dict) or "id" not in value or "url" not in value:
            raise CommandMismatch(f"{label} needs a dict made by fake.attachment(), got {value!r}")
        resolved.setdefault("attachments", {})[str(value["id"])] = dict(value)
        out["value"] = str(value["id"])
    elif otype in (USER, MENTIONABLE) and _user_id(value, world) is not None:
        user_id = _user_id(value, world)
        assert user_id is not None
        _resolve_user(invoker, user_id, resolved)
        out["value"] = str(user_id)
    elif otype in (ROLE, MENTIONABLE) and guild_id is not None and _role(value, world, guild_id):
        role = world.guilds[guild_id].roles[int(value)]
        resolved.setdefault("roles", {})[str(role.id)] = role.to_payload()
        out["value"] = str(role.id)
    elif otype == CHANNEL and isinstance(value, int) and value in world.channels:
        channel = world.channels[value]
        allowed = spec.get("channel_types")
        if allowed and channel.type not in allowed:
            raise CommandMismatch(f"{label} accepts channel types {allowed}, not {channel.type}")
        payload = channel.to_payload()
        payload["permissions"] = str(world.channel_permissions(channel, invoker.user_id))
        resolved.setdefault("channels", {})[str(channel.id)] = payload
        out["value"] = str(channel.id)
    else:
        raise CommandMismatch(f"{label} cannot take {value!r}")
    choices = spec.get("choices")
    if choices and out["value"] not in [c["value"] for c in choices]:
        raise CommandMismatch(
            f"{label}: {value!r} is not one of the synced choices {[c['value'] for c in choices]}"
        )
    return out


def _user_id(value: Any, world: World) -> int | None:
    if isinstance(value, User):
        return value.id
    if isinstance(value, int) and not isinstance(value, bool) and value in world.users:
        return value
    return None


def _role(value: Any, world: World, guild_id: int) -> bool:
    return isinstance(value, int) and value in world.guilds[guild_id].roles


def _resolve_user(invoker: _Invoker, user_id: int, resolved: dict[str, dict[str, Payload]]) -> None:
    world = invoker.world
    user = world.users[user_id]
    resolved.setdefault("users", {})[str(user_id)] = user.to_payload()
    guild = world.guild_of(invoker.channel)
    if guild is not None and user_id in guild.members:
        permissions = world.channel_permissions(invoker.channel, user_id)
        member = world.member_payload(guild, user_id, permissions)
        member.pop("user")
        resolved.setdefault("members", {})[str(user_id)] = member
