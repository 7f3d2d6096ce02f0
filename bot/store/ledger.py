"""The credit ledger's vocabulary: entry kinds, balances, spend summaries and allowance days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class LedgerKind(StrEnum):
    """What a ledger row records."""

    RESERVE = "reserve"  # a job was accepted: its cost is held
    SETTLE = "settle"  # the job delivered: the hold becomes a charge
    REFUND = "refund"  # the job ended without a video and fal surely never billed it
    # The job ended without a video, but fal may have run it and billed the operator (an
    # unknown submit, a run fal never finished or whose video could not be fetched): the member
    # gets the credits back in full, as with a refund, but the server's and the day's spend
    # keep counting them, so the budgets cap what fal may bill, not only what is held.
    WRITE_OFF = "write_off"
    GRANT = "grant"  # an admin gave one-off credits for the day
    RESET = "reset"  # an admin reset the member: credits back what was used so far


# The ways a job's reservation ends (once): charged, given back, or given back and written off.
ENDINGS = frozenset({LedgerKind.SETTLE, LedgerKind.REFUND, LedgerKind.WRITE_OFF})


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One append-only ledger row."""

    id: int
    ts: int
    period: str
    guild_id: int
    user_id: int
    job_id: str | None
    kind: LedgerKind
    amount: int
    actor_id: int  # the member, the admin, or 0 for the bot itself
    note: str


@dataclass(frozen=True, slots=True)
class Balance:
    """A member's credits in one server for one allowance day.

    used = reserves - refunds - write_offs; reserved = reserves - settles - refunds -
    write_offs (still held by unfinished jobs); granted = grants + resets;
    left = allowance + granted - used. A write-off is the member's as much as a refund is.
    """

    allowance: int
    granted: int
    used: int
    reserved: int
    left: int


@dataclass(frozen=True, slots=True)
class DayTotals:
    """The sums of a member's ledger rows in one server on one allowance day, by kind."""

    reserves: int = 0
    settles: int = 0
    refunds: int = 0
    grants: int = 0
    resets: int = 0
    write_offs: int = 0

    def balance(self, allowance: int) -> Balance:
        """The member's balance for that day, given their daily allowance."""
        used = self.reserves - self.refunds - self.write_offs
        granted = self.grants + self.resets
        return Balance(
            allowance=allowance,
            granted=granted,
            used=used,
            reserved=self.reserves - self.settles - self.refunds - self.write_offs,
            left=allowance + granted - used,
        )


@dataclass(frozen=True, slots=True)
class DaySpend:
    """What a server spent on one allowance day."""

    period: str
    spent: int  # reserves - refunds: held, charged, and written off (fal may have billed)
    settled: int  # charged for delivered videos
    refunded: int
    jobs: int  # reservations taken
    written_off: int = 0  # given back to members, but fal may have billed it


@dataclass(frozen=True, slots=True)
class MemberSpend:
    """What one member spent in a server on one allowance day."""

    user_id: int
    spent: int  # what counted against the member: refunds and write-offs came back to them
    jobs: int


def allowance_period(now: float, reset_hour: int = 0) -> str:
    """The allowance day that `now` (epoch seconds) falls in, as "YYYY-MM-DD".

    A day runs from `reset_hour`:00 UTC to the same hour the next day and is named after the
    date it starts on, so with reset_hour=6, 05:59 UTC on the 22nd still counts on the 21st.
    """
    _check_reset_hour(reset_hour)
    shifted = datetime.fromtimestamp(now, UTC) - timedelta(hours=reset_hour)
    return shifted.date().isoformat()


def next_reset(now: float, reset_hour: int = 0) -> int:
    """Epoch seconds of the next allowance reset strictly after `now`."""
    _check_reset_hour(reset_hour)
    start = datetime.fromisoformat(allowance_period(now, reset_hour)).replace(tzinfo=UTC)
    return int((start + timedelta(days=1, hours=reset_hour)).timestamp())


def _check_reset_hour(reset_hour: int) -> None:
    if not 0 <= reset_hour <= 23:
        raise ValueError(f"reset_hour must be 0 to 23, not {reset_hour}")
