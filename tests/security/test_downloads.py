"""Result videos are downloaded only from the configured fal hosts, over HTTPS outside tests,
and never beyond the size cap."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot.emulator import JobScript
from bot.jobs.runner import download_rules
from bot.media import DownloadRefused, download
from bot.store import JobState, LedgerKind
from tests.e2e.conftest import World, embed_text, job_id_of


async def test_a_result_on_a_foreign_host_is_never_downloaded_and_the_member_is_not_charged(
    world: World,
) -> None:
    # The emulator itself serves the file, under a name the bot was not configured with: the
    # video is reachable, so only the host rule stands between the bot and the download.
    port = httpx.URL(world.fal.base_url).port
    world.fal.script_next(JobScript(result_base_url=f"http://localhost:{port}"))
    interaction = await world.command("pika text", {"prompt": "a boat"})
    reply = await world.progress_says(interaction, "could not be fetched")
    job = await world.job(job_id_of(reply))

    assert job.state is JobState.FAILED
    assert job.error_code == "download_failed"
    words = embed_text(reply)
    assert "does not download from localhost" in words
    assert "not charged" in words
    assert world.fal.counts["result"] == 1
    assert world.fal.counts["file"] == 0  # not one byte was asked for
    assert job.output_path is None
    assert world.bot is not None
    assert not list(world.bot.settings.output_dir.glob("*.mp4"))
    assert world.store is not None
    ledger = [(e.kind, e.amount) for e in await world.store.ledger.for_job(job.id)]
    # fal finished (and billed) the run: the member gets the credits back, the budgets keep them.
    assert [kind for kind, _ in ledger] == [LedgerKind.RESERVE, LedgerKind.WRITE_OFF]
    assert world.posts() == []


@pytest.mark.parametrize(
    ("fal_urls", "https"),
    [
        (("https://queue.fal.run", "https://rest.fal.ai"), True),
        (("https://fal-proxy.example.org", "https://fal-proxy.example.org"), True),
        (("http://127.0.0.1:8080", "http://localhost:8081"), False),
        # One non-loopback URL is enough for every download to need HTTPS.
        (("http://127.0.0.1:8080", "https://rest.fal.ai"), True),
        (("http://10.0.0.5:8080", "http://10.0.0.5:8080"), True),
    ],
)
def test_plain_http_is_allowed_only_when_every_fal_url_is_this_machine(
    fal_urls: tuple[str, str], https: bool
) -> None:
    hosts, required = download_rules([".fal.media"], *fal_urls)
    assert required is https
    assert ".fal.media" in hosts
    assert {httpx.URL(url).host for url in fal_urls} <= hosts


async def test_a_non_loopback_fal_result_over_plain_http_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, content=b"video")

    hosts, https = download_rules([".fal.media"], "https://queue.fal.run", "https://rest.fal.ai")
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(DownloadRefused, match="https"):
            await download(
                client,
                "http://v3.fal.media/files/result.mp4",
                tmp_path / "out.mp4",
                max_bytes=1024,
                allowed_hosts=hosts,
                require_https=https,
            )
        # The same host over HTTPS is fine, and the size cap still applies.
        size = await download(
            client,
            "https://v3.fal.media/files/result.mp4",
            tmp_path / "out.mp4",
            max_bytes=1024,
            allowed_hosts=hosts,
            require_https=https,
        )
        with pytest.raises(DownloadRefused, match="at most 4 bytes"):
            await download(
                client,
                "https://v3.fal.media/files/result.mp4",
                tmp_path / "big.mp4",
                max_bytes=4,
                allowed_hosts=hosts,
                require_https=https,
            )
    assert size == 5
    # The plain-http attempt never left the bot; both HTTPS ones did.
    assert [str(r.url) for r in asked] == ["https://v3.fal.media/files/result.mp4"] * 2
    assert not (tmp_path / "big.mp4").exists()
