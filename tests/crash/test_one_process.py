"""One bot process per SQLite database: a second `python -m bot run` on the same file is refused
at start (it would resume and deliver every unfinished job again), and a SIGKILL of the holder
leaves no stale lock."""

from __future__ import annotations

import asyncio
import socket
import sys

from bot.emulator import JobScript
from bot.store import JobState
from tests.crash.conftest import ROOT, WAIT_S, Crash
from tests.crash.test_crash_restart import assert_delivered_once, finish, first_reply


async def second_run(crash: Crash) -> tuple[int, str]:
    """Start another `python -m bot run` on the same database; its exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=ROOT,
        env=crash._environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), WAIT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("the second bot process started beside the first") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


async def test_a_second_process_on_the_same_database_is_refused_and_names_the_first(
    crash: Crash,
) -> None:
    first = await crash.start()
    crash.fal.script_next(JobScript(hold_in_queue=True))
    interaction = await crash.command("pika text", {"prompt": "only one process"})
    job_id = await first_reply(crash, interaction)
    [submission] = await crash.watched.until(lambda: crash.fal.submissions)
    sessions = len(crash.fake.sessions)

    code, output = await second_run(crash)

    assert code == 2, output
    assert "in use by another bot process" in output
    assert f"pid {first.proc.pid} on host {socket.gethostname()}" in output
    assert len(crash.fake.sessions) == sessions  # it never connected to Discord
    assert not first.exited
    # The first one still owns the job, and delivers it once.
    await crash.fal.advance(submission.request_id)
    await finish(crash, job_id)
    await assert_delivered_once(crash, job_id, "only one process")


async def test_after_a_sigkill_of_the_holder_a_new_process_starts(crash: Crash) -> None:
    await crash.start()
    crash.fal.script_next(JobScript(hold_in_queue=True))
    interaction = await crash.command("pika text", {"prompt": "after the holder died"})
    job_id = await first_reply(crash, interaction)
    [submission] = await crash.watched.until(lambda: crash.fal.submissions)
    await crash.watched.until(lambda: crash.fal.counts["stream"] + crash.fal.counts["status"])
    await crash.kill()
    assert (await crash.job(job_id)).state is JobState.SUBMITTED

    await crash.start()  # refused with a stale lock, this would raise
    await crash.fal.advance(submission.request_id)
    await finish(crash, job_id)
    await assert_delivered_once(crash, job_id, "after the holder died")
