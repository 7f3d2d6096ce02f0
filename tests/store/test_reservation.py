"""The one rule a reservation is decided by (bot/store/reservation.py), asked by the checks
before the defer and by the reservation's transaction alike."""

from __future__ import annotations

import pytest

from bot.store import (
    AllowanceExceeded,
    DayTotals,
    GlobalBudgetExceeded,
    GuildBudgetExceeded,
    MemberBlocked,
    QuotaExceeded,
    QuotaLimits,
    QuotaTotals,
    TooManyJobs,
    check_reservation,
)

LIMITS = QuotaLimits(allowance=100, max_unfinished=2, guild_budget=500, global_budget=1000)


def totals(**changes: object) -> QuotaTotals:
    values: dict[str, object] = {
        "blocked": False,
        "unfinished": 0,
        "day": DayTotals(),
        "guild_spent": 0,
        "global_spent": 0,
    }
    values.update(changes)
    return QuotaTotals(**values)  # type: ignore[arg-type]


def test_a_job_that_fits_gets_the_balance_it_leaves() -> None:
    balance = check_reservation(totals(day=DayTotals(reserves=30)), LIMITS, cost=70)
    assert (balance.used, balance.left) == (30, 70)


@pytest.mark.parametrize(
    ("changes", "cost", "refusal"),
    [
        ({"blocked": True, "unfinished": 5}, 1, MemberBlocked),
        ({"unfinished": 2, "global_spent": 1000}, 1, TooManyJobs),
        ({"day": DayTotals(reserves=90), "guild_spent": 500}, 20, AllowanceExceeded),
        ({"guild_spent": 490, "global_spent": 1000}, 20, GuildBudgetExceeded),
        ({"global_spent": 990}, 20, GlobalBudgetExceeded),
    ],
    ids=["blocked first", "then jobs", "then allowance", "then server", "then global"],
)
def test_the_first_limit_a_job_does_not_fit_refuses_it(
    changes: dict[str, object], cost: int, refusal: type[QuotaExceeded]
) -> None:
    with pytest.raises(refusal):
        check_reservation(totals(**changes), LIMITS, cost=cost)
