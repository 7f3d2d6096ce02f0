"""The one rule that decides whether a job may be reserved, from totals, limits and its cost:
the checks before Discord's acknowledgement and the reservation's own transaction both ask it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.errors import (
    AllowanceExceeded,
    GlobalBudgetExceeded,
    GuildBudgetExceeded,
    MemberBlocked,
    TooManyJobs,
)
from bot.store.ledger import Balance, DayTotals


@dataclass(frozen=True, slots=True)
class QuotaTotals:
    """What stands against a member when they ask for a job, read at one moment."""

    blocked: bool
    unfinished: int  # the member's unfinished jobs in every server
    day: DayTotals  # the member's ledger sums in this server that day
    guild_spent: int  # held or charged in this server that day
    global_spent: int  # held or charged across all servers that day


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """The limits a job must fit in."""

    allowance: int  # the member's daily allowance in this server
    max_unfinished: int
    guild_budget: int
    global_budget: int


def check_reservation(totals: QuotaTotals, limits: QuotaLimits, *, cost: int) -> Balance:
    """The member's balance when a job costing `cost` fits every limit.

    Raises, in this order, MemberBlocked, TooManyJobs, AllowanceExceeded, GuildBudgetExceeded
    or GlobalBudgetExceeded for the first limit it does not fit.
    """
    if totals.blocked:
        raise MemberBlocked(cost=cost)
    if totals.unfinished >= limits.max_unfinished:
        raise TooManyJobs(cost=cost, unfinished=totals.unfinished, limit=limits.max_unfinished)
    balance = totals.day.balance(limits.allowance)
    if cost > balance.left:
        raise AllowanceExceeded(cost=cost, left=balance.left, limit=limits.allowance)
    budget, spent = limits.guild_budget, totals.guild_spent
    if spent + cost > budget:
        raise GuildBudgetExceeded(cost=cost, left=budget - spent, limit=budget)
    budget, spent = limits.global_budget, totals.global_spent
    if spent + cost > budget:
        raise GlobalBudgetExceeded(cost=cost, left=budget - spent, limit=budget)
    return balance
