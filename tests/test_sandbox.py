"""The sandbox end to end (small sizes): a real video per mode and a readable transcript."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from bot.__main__ import main as cli
from bot.emulator import JobScript
from bot.sandbox import run as sandbox_run
from bot.sandbox.run import SMALL, SandboxFailed, run_sandbox
from tests.fakediscord.openapi import discord_body_check

MODES = {
    "text": "/pika text",
    "animate": "/pika animate",
    "frames": "/pika frames",
    "scenes": "/pika scenes",
    "effect": "/pika effect",
    "swap": "/pika swap",
    "add": "/pika add",
}


@pytest.fixture(autouse=True)
def _logging_levels() -> Iterator[None]:
    """The command changes log levels for its own run; later tests get them back as they were."""
    loggers = [logging.getLogger(), logging.getLogger("discord.client")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def frames_in(path: Path) -> int:
    """How many video frames an MP4 file holds (raises if it is not one)."""
    with av.open(str(path), mode="r") as container:
        return len(list(container.decode(video=0)))


async def test_every_mode_and_every_button_gives_a_real_video_and_a_transcript(
    tmp_path: Path,
) -> None:
    out = tmp_path / "sandbox-out"
    said: list[str] = []
    report = await run_sandbox(out, sizes=SMALL, say=said.append, check_body=discord_body_check())

    assert [s.slug for s in report.steps] == [
        *MODES,
        "menu-animate",
        "reroll",
        "remix",
        "continue",
    ]
    assert report.skipped == ()
    assert report.discord_problems == ()
    for number, step in enumerate(report.steps, start=1):
        assert step.video == out / f"{number:02d}-{step.slug}.mp4"
        assert frames_in(step.video) > 0, step.slug
    assert len({s.job_id for s in report.steps}) == len(report.steps)
    assert sorted(p.name for p in out.glob("*.mp4")) == [s.video.name for s in report.steps]
    assert (out / "inputs" / "sunset.png").is_file()
    assert (out / "inputs" / "red-square.mp4").is_file()

    transcript = report.transcript.read_text(encoding="utf-8")
    for mode, command in MODES.items():
        assert f"typed `{command} " in transcript, mode
        assert f"Mode: {mode} (" in transcript, mode
    for step in report.steps:
        assert f"saved as `{step.video.name}`" in transcript
        assert f"footer: job {step.job_id}" in transcript
    assert "Apps → Animate with Pika" in transcript
    assert "Prompt: “the daisy sways in a warm breeze”" in transcript
    assert "clicked **[Re-roll]**" in transcript
    assert "clicked **[Remix]**" in transcript
    assert "clicked **[Continue]**" in transcript
    assert "Negative prompt: “blurry, text”" in transcript
    assert "buttons: [Re-roll] [Remix] [Continue] [Details] [Delete]" in transcript
    assert "went through: Pika is thinking… → " in transcript
    assert "@alice your video is ready." in transcript
    # Tokens are made up per run and never written anywhere.
    assert "sandbox-" not in transcript
    assert any(report.steps[-1].video.name in line for line in said)


async def test_a_job_without_a_video_stops_the_run_and_says_which_step(tmp_path: Path) -> None:
    out = tmp_path / "out"
    failing = JobScript(outcome="model_error", error_message="the model could not do it")
    with pytest.raises(SandboxFailed, match=r"step 1 \(Text to video\): job [a-z2-7]{8} ended"):
        await run_sandbox(out, sizes=SMALL, say=lambda _: None, fal_script=failing)
    transcript = (out / "transcript.md").read_text(encoding="utf-8")
    assert "typed `/pika text " in transcript
    assert "No video this time" in transcript
    assert not list(out.glob("*.mp4"))


def test_the_command_names_the_folder_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "from-cli"
    assert cli(["sandbox", "--out", str(out), "--small"]) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith(str(out.resolve()))
    assert len(list(out.glob("*.mp4"))) == 11
    assert (out / "transcript.md").is_file()


def test_the_command_exits_1_with_a_clear_message_when_a_job_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = JobScript(outcome="model_error", error_message="the model could not do it")
    monkeypatch.setattr(
        sandbox_run, "run_sandbox", functools.partial(run_sandbox, fal_script=failing)
    )
    assert cli(["sandbox", "--out", str(tmp_path / "bad"), "--small"]) == 1
    errors = capsys.readouterr().err
    assert "sandbox: step 1 (Text to video): job " in errors
    assert "transcript.md" in errors
