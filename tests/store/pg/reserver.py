"""A process that reserves jobs on a PostgreSQL store at a signal, for the concurrency tests.

    python -m tests.store.pg.reserver DSN SCENARIO FIRST COUNT

It opens its own PgStore on DSN, prints "ready", waits for a line on stdin, then makes COUNT
reservations at once (numbered from FIRST) as SCENARIO (tests/store/pg/test_pg_concurrency.py)
says, and prints how many were accepted and how many refused, as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bot.store.postgres.store import PgStore
from tests.store.pg.scenarios import SCENARIOS, reserve_all


async def main(dsn: str, scenario: str, first: int, count: int) -> None:
    async with await PgStore.open(dsn, max_size=10) as store:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        accepted, refused = await reserve_all(
            store, SCENARIOS[scenario], range(first, first + count)
        )
    print(json.dumps({"accepted": accepted, "refused": refused}), flush=True)


if __name__ == "__main__":
    dsn, scenario, first, count = sys.argv[1:5]
    asyncio.run(main(dsn, scenario, int(first), int(count)))
