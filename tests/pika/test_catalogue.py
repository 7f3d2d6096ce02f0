"""The catalogue matches FAL.md's endpoint table and PRODUCT.md's choices."""

import pytest

from bot.pika import (
    ASPECT_RATIOS,
    DEFAULT_MODEL,
    DURATIONS,
    EFFECTS,
    ENDPOINTS,
    INGREDIENTS_MODES,
    MODEL_CHOICES,
    MODELS,
    PROMPT_MAX,
    RESOLUTIONS,
    SEED_MAX,
    Choice,
    InvalidRequest,
    Mode,
    endpoint_for,
    resolution_choices,
)


def test_every_endpoint_of_the_fal_table_is_listed_once() -> None:
    assert [e.id for e in ENDPOINTS] == [
        "fal-ai/pika/v2.5/text-to-video",
        "fal-ai/pika/v2.2/text-to-video",
        "fal-ai/pika/v2.1/text-to-video",
        "fal-ai/pika/v2/turbo/text-to-video",
        "fal-ai/pika/v2.2/image-to-video",
        "fal-ai/pika/v2.1/image-to-video",
        "fal-ai/pika/v2/turbo/image-to-video",
        "fal-ai/pika/v2.2/pikaframes",
        "fal-ai/pika/v2.2/pikascenes",
        "fal-ai/pika/v1.5/pikaffects",
        "fal-ai/pika/v2/pikaswaps",
        "fal-ai/pika/v2/pikadditions",
    ]


def test_models_per_mode_and_their_defaults() -> None:
    assert MODELS[Mode.TEXT] == ("v2.5", "v2.2", "v2.1", "v2-turbo")
    assert MODELS[Mode.ANIMATE] == ("v2.2", "v2.1", "v2-turbo")
    assert DEFAULT_MODEL[Mode.TEXT] == "v2.5"
    assert DEFAULT_MODEL[Mode.ANIMATE] == "v2.2"
    for mode in (Mode.FRAMES, Mode.SCENES, Mode.EFFECT, Mode.SWAP, Mode.ADD):
        assert len(MODELS[mode]) == 1


@pytest.mark.parametrize(
    ("mode", "model", "endpoint_id"),
    [
        (Mode.TEXT, None, "fal-ai/pika/v2.5/text-to-video"),
        (Mode.TEXT, "v2-turbo", "fal-ai/pika/v2/turbo/text-to-video"),
        ("animate", None, "fal-ai/pika/v2.2/image-to-video"),
        (Mode.ANIMATE, "v2.1", "fal-ai/pika/v2.1/image-to-video"),
        (Mode.FRAMES, None, "fal-ai/pika/v2.2/pikaframes"),
        (Mode.SCENES, None, "fal-ai/pika/v2.2/pikascenes"),
        (Mode.EFFECT, None, "fal-ai/pika/v1.5/pikaffects"),
        (Mode.SWAP, None, "fal-ai/pika/v2/pikaswaps"),
        (Mode.ADD, None, "fal-ai/pika/v2/pikadditions"),
    ],
)
def test_endpoint_for_finds_the_endpoint_of_a_mode_and_model(
    mode: Mode | str, model: str | None, endpoint_id: str
) -> None:
    assert endpoint_for(mode, model).id == endpoint_id


def test_endpoint_for_refuses_a_model_the_mode_lacks_and_names_the_ones_it_has() -> None:
    with pytest.raises(InvalidRequest, match=r'model "v2\.5" .*animate.*v2\.2, v2\.1 or v2-turbo'):
        endpoint_for(Mode.ANIMATE, "v2.5")


def test_endpoint_for_refuses_an_unknown_mode() -> None:
    with pytest.raises(InvalidRequest, match="text, animate, frames"):
        endpoint_for("dance")


def test_what_each_endpoint_accepts() -> None:
    v25 = endpoint_for(Mode.TEXT, "v2.5")
    assert v25.resolutions == ("480p", "720p", "1080p")
    assert not v25.accepts_aspect_ratio
    assert v25.accepts_duration
    v22 = endpoint_for(Mode.TEXT, "v2.2")
    assert v22.resolutions == ("720p", "1080p")
    assert v22.accepts_aspect_ratio
    assert v22.default_aspect_ratio == "16:9"
    assert not endpoint_for(Mode.ANIMATE).accepts_aspect_ratio
    assert not endpoint_for(Mode.FRAMES).accepts_duration
    assert endpoint_for(Mode.SCENES).accepts_aspect_ratio
    for mode in (Mode.EFFECT, Mode.SWAP, Mode.ADD):
        endpoint = endpoint_for(mode)
        assert endpoint.resolutions == ()
        assert not endpoint.accepts_duration
        assert not endpoint.accepts_aspect_ratio


def test_fal_default_resolutions_follow_the_seed_corrections() -> None:
    assert endpoint_for(Mode.TEXT).default_resolution == "720p"
    assert endpoint_for(Mode.ANIMATE).default_resolution == "720p"
    assert endpoint_for(Mode.FRAMES).default_resolution == "720p"
    assert endpoint_for(Mode.SCENES).default_resolution == "1080p"


def test_choice_values_are_exactly_the_products() -> None:
    assert [c.value for c in ASPECT_RATIOS] == ["16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3"]
    assert [c.value for c in RESOLUTIONS] == ["480p", "720p", "1080p"]
    assert [c.value for c in DURATIONS] == [5, 10]
    assert [c.value for c in INGREDIENTS_MODES] == ["precise", "creative"]
    assert [c.value for c in EFFECTS] == [
        "Cake-ify", "Crumble", "Crush", "Decapitate", "Deflate", "Dissolve", "Explode", "Eye-pop",
        "Inflate", "Levitate", "Melt", "Peel", "Poke", "Squish", "Ta-da", "Tear",
    ]  # fmt: skip
    assert PROMPT_MAX == 1500
    assert SEED_MAX == 4294967295


def test_choices_fit_discord_choice_lists() -> None:
    lists: list[tuple[Choice[str], ...] | tuple[Choice[int], ...]] = [
        ASPECT_RATIOS,
        RESOLUTIONS,
        DURATIONS,
        EFFECTS,
        INGREDIENTS_MODES,
        *MODEL_CHOICES.values(),
    ]
    for choices in lists:
        assert len(choices) <= 25
        for choice in choices:
            assert 1 <= len(choice.name) <= 100
            assert isinstance(choice.value, str | int)


def test_model_choices_mark_the_default() -> None:
    text = MODEL_CHOICES[Mode.TEXT]
    assert [c.value for c in text] == ["v2.5", "v2.2", "v2.1", "v2-turbo"]
    assert "default" in text[0].name
    assert all("default" not in c.name for c in text[1:])


def test_480p_is_offered_only_to_text() -> None:
    assert [c.value for c in resolution_choices(Mode.TEXT)] == ["480p", "720p", "1080p"]
    for mode in (Mode.ANIMATE, Mode.FRAMES, Mode.SCENES):
        assert [c.value for c in resolution_choices(mode)] == ["720p", "1080p"]
    assert resolution_choices(Mode.EFFECT) == ()
