"""Credits, limits and server rules below Discord: allowances, the reset hour, prechecks,
policy refusals and jobs made from other jobs, with a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.fal import FalClient
from bot.jobs import (
    Accounts,
    BlockedWord,
    Jobs,
    Limits,
    NotAllowedHere,
    QuotaRefused,
    Requester,
)
from bot.jobs.messenger import Delivered, Progress
from bot.jobs.policy import blocked_word
from bot.jobs.runner import RunnerConfig
from bot.media import InputCache
from bot.pika import InputRef, Mode, PriceList, build_request, price
from bot.store import (
    UNFINISHED_STATES,
    DeliveryPath,
    Job,
    JobState,
    LedgerKind,
    QuotaExceeded,
    QuotaReason,
    Store,
    blocklist_entry,
)

GUILD, CHANNEL, ALICE, BOB = 1, 10, 100, 200
# 2026-11-21 05:30 UTC: half an hour before a 06:00 reset.
BEFORE_RESET = int(datetime(2026, 11, 21, 5, 30, tzinfo=UTC).timestamp())
RESET = int(datetime(2026, 11, 21, 6, 0, tzinfo=UTC).timestamp())


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


class SilentMessenger:
    async def show_progress(self, job: Job, progress: Progress) -> None:
        return None

    async def deliver(self, job: Job, video: Path, *, resumed: bool) -> Delivered:
        return Delivered(DeliveryPath.CHANNEL, 1)

    async def tell_failure(self, job: Job, reason: str) -> None:
        return None

    async def ready(self) -> None:
        pass


def limits(**overrides: Any) -> Limits:
    values: dict[str, Any] = {
        "prices": PriceList(),
        "daily_allowance": 100,
        "reset_hour": 6,
        "guild_daily_budget": 1000,
        "global_daily_budget": 5000,
        "max_jobs_per_member": 50,
        "fal_concurrency": 4,
        **overrides,
    }
    return Limits(**values)


@pytest.fixture
def clock() -> Clock:
    return Clock(BEFORE_RESET)


@pytest.fixture
async def store(clock: Clock) -> AsyncIterator[Store]:
    async with await Store.open(":memory:", clock=clock) as opened:
        yield opened


@pytest.fixture
def accounts(store: Store, clock: Clock) -> Accounts:
    return Accounts(store=store, limits=limits(), clock=clock)


@pytest.fixture
async def jobs(store: Store, clock: Clock, tmp_path: Path) -> AsyncIterator[Jobs]:
    """Jobs that accept and reserve; nothing is started, so nothing reaches fal."""
    async with httpx.AsyncClient() as http:
        fal = FalClient("http://127.0.0.1:9", "http://127.0.0.1:9", "unused-key", http=http)
        yield Jobs(
            store=store,
            fal=fal,
            runner_config=RunnerConfig(
                output_dir=tmp_path / "out",
                data_uri_max_bytes=1024,
                output_max_bytes=1024 * 1024,
                download_hosts=(),
                download_require_https=False,
                poll_interval=1.0,
                progress_interval=1.0,
                deadline_seconds=3600,
            ),
            limits=limits(),
            messenger=SilentMessenger(),
            cache=InputCache(tmp_path / "cache", max_bytes=10**8, max_age_seconds=3600),
            http=http,
            clock=clock,
        )


def alice(**overrides: Any) -> Requester:
    values: dict[str, Any] = {"guild_id": GUILD, "channel_id": CHANNEL, "user_id": ALICE}
    return Requester(**{**values, **overrides})


def text(prompt: str = "a fox", resolution: str = "720p", duration: int = 5) -> Any:
    return build_request(Mode.TEXT, prompt=prompt, resolution=resolution, duration=duration)


# -- allowances -----------------------------------------------------------------------------


async def test_the_highest_role_allowance_wins(accounts: Accounts) -> None:
    await accounts.store.rules.set_role_limit(GUILD, 7, 150, actor_id=1)
    await accounts.store.rules.set_role_limit(GUILD, 8, 300, actor_id=1)
    await accounts.store.rules.set_role_limit(GUILD, 9, 20, actor_id=1)
    assert await accounts.allowance(GUILD, ALICE, [9, 7, 8]) == 300
    assert await accounts.allowance(GUILD, ALICE, [9, 7]) == 150
    assert await accounts.allowance(GUILD, ALICE, [9]) == 20
    assert await accounts.allowance(GUILD, ALICE, [42]) == 100  # no listed role: the default


async def test_a_member_allowance_beats_every_role(accounts: Accounts) -> None:
    await accounts.store.rules.set_role_limit(GUILD, 8, 300, actor_id=1)
    await accounts.store.rules.set_member_limit(GUILD, ALICE, 40, actor_id=1)
    assert await accounts.allowance(GUILD, ALICE, [8]) == 40
    await accounts.store.rules.set_member_limit(GUILD, ALICE, None, actor_id=1)
    assert await accounts.allowance(GUILD, ALICE, [8]) == 300


async def test_a_role_allowance_applies_to_reservations(jobs: Jobs) -> None:
    await jobs.store.rules.set_role_limit(GUILD, 8, 60, actor_id=1)
    for _ in range(3):
        await jobs.accept(text(), alice(role_ids=[8]))
    with pytest.raises(QuotaRefused) as refused:
        await jobs.accept(text(), alice(role_ids=[8]))
    assert refused.value.reason is QuotaReason.MEMBER_ALLOWANCE
    assert (refused.value.left, refused.value.limit, refused.value.cost) == (0, 60, 20)


async def test_the_allowance_comes_back_at_the_reset_hour(jobs: Jobs, clock: Clock) -> None:
    for _ in range(5):
        await jobs.accept(text(), alice())
    with pytest.raises(QuotaRefused) as refused:
        await jobs.accept(text(), alice())
    message = str(refused.value)
    assert "costs 20 credits" in message
    assert "0 left" in message
    assert f"<t:{RESET}:R>" in message  # when the credits come back, in each reader's time
    clock.now = RESET - 1
    with pytest.raises(QuotaRefused):
        await jobs.accept(text(), alice())
    clock.now = RESET
    accepted = await jobs.accept(text(), alice())
    quota = await jobs.accounts.quota(GUILD, ALICE, [])
    assert quota.period == "2026-11-21"
    assert quota.balance.used == 20
    assert quota.balance.left == 80
    assert quota.resets_at == RESET + 86400
    ledger = await jobs.store.ledger.for_job(accepted.job.id)
    assert [(e.kind, e.period) for e in ledger] == [(LedgerKind.RESERVE, "2026-11-21")]


async def test_a_grant_adds_credits_for_today_only(accounts: Accounts, clock: Clock) -> None:
    await accounts.grant(GUILD, ALICE, 30, actor_id=1, note="contest winner")
    assert (await accounts.quota(GUILD, ALICE, [])).balance.left == 130
    clock.now = RESET
    assert (await accounts.quota(GUILD, ALICE, [])).balance.left == 100


async def test_a_reset_gives_back_what_was_charged(jobs: Jobs) -> None:
    for _ in range(5):
        accepted = await jobs.accept(text(), alice())
        await jobs.store.jobs.finish(
            accepted.job.id,
            JobState.DELIVERED,
            expected=UNFINISHED_STATES,
            outcome=LedgerKind.SETTLE,
        )
    entry = await jobs.accounts.reset(GUILD, ALICE, actor_id=1)
    assert entry.amount == 100
    assert (await jobs.accounts.quota(GUILD, ALICE, [])).balance.left == 100
    await jobs.accept(text(), alice())


# -- the checks before the defer ------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "options", "files"),
    [
        (Mode.TEXT, {"prompt": "x", "resolution": "1080p", "duration": 10}, {}),
        (Mode.TEXT, {"prompt": "x", "resolution": "480p"}, {}),
        (Mode.ANIMATE, {"prompt": "x"}, {"image": "image/png"}),
        (
            Mode.FRAMES,
            {"durations": "5,10", "resolution": "1080p"},
            {"image1": "image/png", "image2": "image/png", "image3": "image/png"},
        ),
        (Mode.SCENES, {"prompt": "x", "duration": 10}, {"image1": "image/png"}),
        (Mode.EFFECT, {"effect": "Melt"}, {"image": "image/png"}),
        (Mode.SWAP, {"prompt": "a cat"}, {"video": "video/mp4"}),
        (Mode.ADD, {}, {"video": "video/mp4", "image": "image/png"}),
    ],
)
def test_the_estimate_is_the_price_the_reservation_takes(
    accounts: Accounts, mode: Mode, options: dict[str, Any], files: dict[str, str]
) -> None:
    refs = {name: InputRef(sha256="ab" * 32, content_type=kind) for name, kind in files.items()}
    real = price(build_request(mode, **options, **refs), PriceList())
    assert accounts.estimate(mode, options, files) == real


async def test_the_precheck_refuses_what_the_reservation_would(accounts: Accounts) -> None:
    await accounts.store.rules.set_daily_budget(GUILD, 50, actor_id=1)
    await accounts.precheck(alice(), cost=45, texts=["a fox"])
    with pytest.raises(QuotaRefused) as refused:
        await accounts.precheck(alice(), cost=55, texts=["a fox"])
    assert refused.value.reason is QuotaReason.GUILD_BUDGET
    assert "server's budget resets" in str(refused.value)
    await accounts.store.rules.block_member(GUILD, ALICE, actor_id=1)
    with pytest.raises(QuotaExceeded) as blocked:
        await accounts.precheck(alice(), cost=1, texts=[])
    assert blocked.value.reason is QuotaReason.BLOCKED


async def test_the_precheck_refuses_a_disallowed_channel_and_a_blocked_word(
    accounts: Accounts,
) -> None:
    await accounts.store.rules.allow_channel(GUILD, 11, actor_id=1)
    with pytest.raises(NotAllowedHere) as refused:
        await accounts.precheck(alice(), cost=20, texts=["a fox"])
    assert "<#11>" in str(refused.value)
    await accounts.precheck(alice(channel_id=11), cost=20, texts=["a fox"])
    await accounts.store.rules.add_blocked_word(GUILD, "  Dragon ", actor_id=1)
    with pytest.raises(BlockedWord):
        await accounts.precheck(alice(channel_id=11), cost=20, texts=["a red DRAGON"])


async def test_accepting_checks_the_channel_and_the_blocklist_too(jobs: Jobs) -> None:
    await jobs.store.rules.add_blocked_word(GUILD, "dragon", actor_id=1)
    with pytest.raises(BlockedWord):
        await jobs.accept(text("dragon in the sky"), alice())
    frames = build_request(
        Mode.FRAMES,
        image1=InputRef(sha256="ab" * 32, content_type="image/png"),
        image2=InputRef(sha256="cd" * 32, content_type="image/png"),
        image3=InputRef(sha256="ef" * 32, content_type="image/png"),
        prompts="a calm sea|a Dragon rises",
    )
    with pytest.raises(BlockedWord):
        await jobs.accept(frames, alice())
    await jobs.store.rules.allow_channel(GUILD, 11, actor_id=1)
    with pytest.raises(NotAllowedHere):
        await jobs.accept(text(), alice())
    assert await jobs.store.ledger.for_member(GUILD, ALICE) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("a dragon flies", "dragon"),
        ("A DRAGON!", "dragon"),
        ("dragonfly at dawn", None),
        ("snapdragon", None),
        ("big-dragon", "dragon"),
        ("the red car", "red car"),
        ("the redcar", None),
    ],
)
def test_blocked_words_match_whole_words_in_any_case(text: str, found: str | None) -> None:
    assert blocked_word(["dragon", "red car"], [text]) == found


@pytest.mark.parametrize(
    "text",
    ["a Straße here", "a STRASSE here", "the red  car", "the red\ncar", "the RED\t car"],
)
def test_prompts_are_folded_by_the_rule_blocked_words_are_stored_by(text: str) -> None:
    # As /pikaadmin blocklist add stores them: "Straße" becomes "strasse", "red  car" "red car".
    stored = [blocklist_entry("Straße"), blocklist_entry("red  Car")]
    assert blocked_word(stored, [text]) is not None


async def test_a_job_made_from_another_job_is_charged_as_a_new_job(jobs: Jobs) -> None:
    first = await jobs.accept(text(), alice())
    again = await jobs.accept(text(), alice(), parent_job_id=first.job.id)
    assert again.job.parent_job_id == first.job.id
    ledger = await jobs.store.ledger.for_member(GUILD, ALICE)
    assert [(e.kind, e.job_id, e.amount) for e in ledger] == [
        (LedgerKind.RESERVE, first.job.id, 20),
        (LedgerKind.RESERVE, again.job.id, 20),
    ]


# -- server defaults ------------------------------------------------------------------------


async def test_server_defaults_fill_what_the_member_left_out(accounts: Accounts) -> None:
    await accounts.set_default_model(GUILD, Mode.TEXT, "v2.2", actor_id=1)
    await accounts.set_default_resolution(GUILD, "1080p", actor_id=1)
    filled = await accounts.with_defaults(GUILD, Mode.TEXT, {"prompt": "x", "model": None})
    assert (filled["model"], filled["resolution"]) == ("v2.2", "1080p")
    chosen = await accounts.with_defaults(
        GUILD, Mode.TEXT, {"prompt": "x", "model": "v2.5", "resolution": "720p"}
    )
    assert (chosen["model"], chosen["resolution"]) == ("v2.5", "720p")
    # The server's model does not make 480p, so the member's 480p keeps the default model.
    low = await accounts.with_defaults(GUILD, Mode.TEXT, {"prompt": "x", "resolution": "480p"})
    assert low.get("model") is None
    effect = await accounts.with_defaults(GUILD, Mode.EFFECT, {"effect": "Melt"})
    assert "resolution" not in effect  # effects have no resolution to choose


async def test_a_default_resolution_a_model_cannot_make_is_left_to_fal(accounts: Accounts) -> None:
    await accounts.set_default_resolution(GUILD, "480p", actor_id=1)
    animate = await accounts.with_defaults(GUILD, Mode.ANIMATE, {"prompt": "x"})
    assert animate.get("resolution") is None
    texts = await accounts.with_defaults(GUILD, Mode.TEXT, {"prompt": "x"})
    assert texts["resolution"] == "480p"


async def test_every_admin_change_is_audited_with_its_admin(accounts: Accounts) -> None:
    admin = 9
    await accounts.store.rules.set_role_limit(GUILD, 7, 150, actor_id=admin)
    await accounts.store.rules.set_member_limit(GUILD, ALICE, 10, actor_id=admin)
    await accounts.grant(GUILD, ALICE, 5, actor_id=admin)
    await accounts.reset(GUILD, ALICE, actor_id=admin)
    await accounts.store.rules.block_member(GUILD, BOB, actor_id=admin, reason="spam")
    await accounts.store.rules.unblock_member(GUILD, BOB, actor_id=admin)
    await accounts.store.rules.set_daily_budget(GUILD, 500, actor_id=admin)
    await accounts.store.rules.allow_channel(GUILD, 11, actor_id=admin)
    await accounts.store.rules.disallow_channel(GUILD, 11, actor_id=admin)
    await accounts.store.rules.clear_allowed_channels(GUILD, actor_id=admin)
    await accounts.store.rules.add_blocked_word(GUILD, "x", actor_id=admin)
    await accounts.store.rules.remove_blocked_word(GUILD, "x", actor_id=admin)
    await accounts.set_default_model(GUILD, Mode.TEXT, "v2.2", actor_id=admin)
    await accounts.set_default_resolution(GUILD, "720p", actor_id=admin)
    await accounts.store.rules.set_audit_channel(GUILD, 12, actor_id=admin)
    log = await accounts.store.audit.log(GUILD, limit=100)
    assert len(log) == 15
    assert {entry.actor_id for entry in log} == {admin}


async def test_the_precheck_on_a_database_file_sees_every_change_at_once(
    tmp_path: Path, clock: Clock
) -> None:
    # A file gets a second, read-only connection for the precheck: it must not lag the writes.
    async with await Store.open(tmp_path / "bot.sqlite3", clock=clock) as store:
        accounts = Accounts(store=store, limits=limits(), clock=clock)
        await accounts.precheck(alice(), cost=100, texts=["a fox"])
        await accounts.grant(GUILD, ALICE, 5, actor_id=1)
        await accounts.precheck(alice(), cost=105, texts=["a fox"])
        await accounts.store.rules.set_daily_budget(GUILD, 50, actor_id=1)
        with pytest.raises(QuotaRefused) as refused:
            await accounts.precheck(alice(), cost=55, texts=["a fox"])
        assert refused.value.reason is QuotaReason.GUILD_BUDGET
        await accounts.store.rules.add_blocked_word(GUILD, "owl", actor_id=1)
        with pytest.raises(BlockedWord):
            await accounts.precheck(alice(), cost=5, texts=["an owl"])
        await accounts.store.rules.block_member(GUILD, ALICE, actor_id=1)
        with pytest.raises(QuotaExceeded) as blocked:
            await accounts.precheck(alice(), cost=1, texts=[])
        assert blocked.value.reason is QuotaReason.BLOCKED
