"""Checks request bodies against Discord's OpenAPI description: the fake Discord's body check.

A test concern: the tests hand `discord_body_check()` to every FakeDiscord they validate with,
and jsonschema is a dev dependency; the fake itself (and so the sandbox) needs neither it nor
the spec file, which is looked for beside this checkout.

The spec has no `additionalProperties: false`, so unknown keys pass; it catches wrong types and
shapes. One deliberate deviation: `SnowflakeType` also accepts non-negative integers, because
discord.py sends placeholder attachment ids as the integer 0 (a multipart upload's index).
"""

from __future__ import annotations

import configparser
import copy
import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_ENV = "DISCORD_OPENAPI_SPEC"
_SPEC_URI = "urn:discord-openapi"
_REPO_ROOT = Path(__file__).resolve().parents[2]
# Where a spec is looked for when validation is asked for without a path: Discord's official
# description, kept (MIT) in the shared folder beside a checkout of the project.
SPEC_CANDIDATES = (
    _REPO_ROOT.parent / "shared" / "vendor" / "discord-api-spec" / "openapi.json",
    _REPO_ROOT / "vendor" / "discord-api-spec" / "openapi.json",
)


class SpecNotFoundError(FileNotFoundError):
    """Validation was asked for but no openapi.json was found."""


def origin_candidate(repo: Path = _REPO_ROOT) -> Path | None:
    """The same file beside the checkout this one was cloned from, when that is a folder on
    this machine (a fresh `git clone . /tmp/fresh` has no shared folder beside it)."""
    config = repo / ".git" / "config"
    try:
        parser = configparser.ConfigParser(strict=False)
        parser.read(config, encoding="utf-8")
        url = parser.get('remote "origin"', "url", fallback="")
    except (OSError, configparser.Error):
        return None
    if not url or "://" in url or ":" in url.split("/", 1)[0]:
        return None  # a remote repository, not a folder here
    origin = (repo / url).resolve()
    return origin.parent / "shared" / "vendor" / "discord-api-spec" / "openapi.json"


def find_spec() -> Path | None:
    """The file named by $DISCORD_OPENAPI_SPEC, else the first known location that exists."""
    configured = os.environ.get(SPEC_ENV)
    if configured:
        return Path(configured)
    for candidate in (*SPEC_CANDIDATES, origin_candidate()):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class _Operation:
    template: str
    pattern: re.Pattern[str]
    literal_segments: int


def _escape_pointer(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class OpenApiValidator:
    """Validates JSON bodies per (method, path) against the operation's requestBody schema."""

    def __init__(self, spec_path: Path) -> None:
        import referencing
        import referencing.jsonschema
        from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

        self._validator_cls = Draft202012Validator
        document = _load_document(str(spec_path))
        resource = referencing.jsonschema.DRAFT202012.create_resource(document)
        self._registry = referencing.Registry().with_resource(_SPEC_URI, resource)
        self._document = document
        self._operations = _operations(document)
        self._validators: dict[tuple[str, str], Any] = {}

    def template_for(self, method: str, path: str) -> str | None:
        """The spec's path template matching a request path, preferring literal segments."""
        best: _Operation | None = None
        for operation in self._operations:
            if method.lower() not in self._document["paths"][operation.template]:
                continue
            if operation.pattern.fullmatch(path) and (
                best is None or operation.literal_segments > best.literal_segments
            ):
                best = operation
        return best.template if best else None

    def validate(self, method: str, path: str, body: Any) -> list[str]:
        """Violations of the requestBody schema (none when valid or when there is no schema)."""
        template = self.template_for(method, path)
        if template is None:
            return []
        validator = self._validator(method.lower(), template)
        if validator is None:
            return []
        problems = []
        for error in validator.iter_errors(body):
            detail = _deepest(error)
            where = "/".join(str(p) for p in detail.absolute_path) or "(body)"
            problems.append(f"{method.upper()} {template}: at {where}: {detail.message[:300]}")
        return problems

    def _validator(self, method: str, template: str) -> Any:
        key = (method, template)
        if key not in self._validators:
            operation = self._document["paths"][template][method]
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                self._validators[key] = None
            else:
                pointer = "/".join(
                    _escape_pointer(p)
                    for p in ("paths", template, method, "requestBody", "content")
                )
                schema = {"$ref": f"{_SPEC_URI}#/{pointer}/application~1json/schema"}
                self._validators[key] = self._validator_cls(schema, registry=self._registry)
        return self._validators[key]


def _deepest(error: Any) -> Any:
    """For anyOf/oneOf failures, the error of the alternative that got furthest into the body."""
    leaves = [error]
    deepest = error
    while leaves:
        current = leaves.pop()
        if current.context:
            leaves.extend(current.context)
        elif len(current.absolute_path) > len(deepest.absolute_path):
            deepest = current
    return deepest


@functools.lru_cache(maxsize=4)
def _load_document(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    document = copy.deepcopy(document)
    schemas = document["components"]["schemas"]
    # discord.py sends placeholder attachment ids as the integer 0.
    snowflake = schemas["SnowflakeType"]
    schemas["SnowflakeType"] = {"anyOf": [snowflake, {"type": "integer", "minimum": 0}]}
    return document


@functools.lru_cache(maxsize=4)
def _operations_cached(paths: tuple[str, ...]) -> tuple[_Operation, ...]:
    operations = []
    for template in paths:
        segments = template.strip("/").split("/")
        regex = "/" + "/".join(
            "[^/]+" if seg.startswith("{") and seg.endswith("}") else re.escape(seg)
            for seg in segments
        )
        literal = sum(1 for seg in segments if not seg.startswith("{"))
        operations.append(_Operation(template, re.compile(regex), literal))
    return tuple(operations)


def _operations(document: dict[str, Any]) -> tuple[_Operation, ...]:
    return _operations_cached(tuple(document["paths"]))


@functools.lru_cache(maxsize=4)
def validator_for(path: str) -> OpenApiValidator:
    """One shared validator (and its compiled schemas) per spec file, so tests pay the cost once."""
    return OpenApiValidator(Path(path))


def discord_body_check() -> Callable[[str, str, Any], list[str]]:
    """The check FakeDiscord(check_body=...) takes: found spec, or SpecNotFoundError."""
    spec = find_spec()
    if spec is None or not spec.is_file():
        raise SpecNotFoundError(f"validation asked for but no openapi.json found (set ${SPEC_ENV})")
    return validator_for(str(spec)).validate
