"""The one rule for who may act on a job (README: "Who may act on a job")."""

from __future__ import annotations

import dataclasses

import pytest

from bot.jobs.policy import Action, Member, may_act_on
from bot.store import Job

GUILD, OWNER, OTHER = 1, 7, 8
MODERATED = {Action.DETAILS, Action.DELETE}
MANAGED = {Action.DETAILS, Action.CANCEL}


def job() -> Job:
    """A job of OWNER's in GUILD: the rule reads nothing else of it."""
    fields: dict[str, object] = {f.name: None for f in dataclasses.fields(Job)}
    return Job(**fields | {"guild_id": GUILD, "user_id": OWNER})  # type: ignore[arg-type]


@pytest.mark.parametrize("action", list(Action))
def test_the_requester_may_do_anything_in_the_jobs_server(action: Action) -> None:
    assert may_act_on(job(), Member(OWNER, GUILD), action)


@pytest.mark.parametrize("action", list(Action))
def test_the_requester_may_use_the_buttons_of_a_video_sent_by_dm(action: Action) -> None:
    assert may_act_on(job(), Member(OWNER, None), action)


@pytest.mark.parametrize("action", list(Action))
def test_nobody_acts_on_a_job_from_another_server(action: Action) -> None:
    everyone = Member(OWNER, GUILD + 1, manage_messages=True, manage_server=True)
    assert not may_act_on(job(), everyone, action)


@pytest.mark.parametrize("action", list(Action))
def test_another_member_may_do_nothing(action: Action) -> None:
    assert not may_act_on(job(), Member(OTHER, GUILD), action)


@pytest.mark.parametrize("action", list(Action))
def test_manage_messages_sees_details_and_deletes_the_post(action: Action) -> None:
    moderator = Member(OTHER, GUILD, manage_messages=True)
    assert may_act_on(job(), moderator, action) is (action in MODERATED)


@pytest.mark.parametrize("action", list(Action))
def test_manage_server_sees_details_and_cancels(action: Action) -> None:
    admin = Member(OTHER, GUILD, manage_server=True)
    assert may_act_on(job(), admin, action) is (action in MANAGED)


@pytest.mark.parametrize("action", [Action.REROLL, Action.REMIX, Action.CONTINUE])
def test_only_the_requester_starts_a_job_from_theirs(action: Action) -> None:
    everyone = Member(OTHER, GUILD, manage_messages=True, manage_server=True)
    assert not may_act_on(job(), everyone, action)


def test_moderators_have_no_powers_in_a_direct_message() -> None:
    assert not may_act_on(job(), Member(OTHER, None, manage_messages=True), Action.DELETE)
