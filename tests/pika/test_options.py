"""build_request: every valid combination of PRODUCT.md §1 passes; every invalid one is refused
with a message that says what was wrong and what is allowed."""

from typing import Any

import pytest

from bot.pika import (
    AddRequest,
    AnimateRequest,
    EffectRequest,
    FramesRequest,
    InputRef,
    InvalidRequest,
    Mode,
    ScenesRequest,
    SwapRequest,
    TextRequest,
    Transition,
    build_request,
    check_options,
    clean_text,
    parse_request,
)


def image(n: int = 1, content_type: str = "image/png") -> InputRef:
    return InputRef(sha256=f"{n:064x}", content_type=content_type)


def video(n: int = 99, content_type: str = "video/mp4") -> InputRef:
    return InputRef(sha256=f"{n:064x}", content_type=content_type)


def refused(mode: str, **options: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        build_request(mode, **options)
    return caught.value


def frames(count: int, **options: Any) -> dict[str, Any]:
    return {f"image{i}": image(i) for i in range(1, count + 1)} | options


# --- valid requests -------------------------------------------------------------------------


def test_text_with_only_a_prompt_uses_the_default_model_and_leaves_the_rest_unset() -> None:
    request = build_request("text", prompt="a cat surfing")
    assert request == TextRequest(prompt="a cat surfing", model="v2.5")
    assert isinstance(request, TextRequest)
    assert (request.aspect_ratio, request.resolution, request.duration, request.seed) == (
        None,
        None,
        None,
        None,
    )
    assert request.negative_prompt is None
    assert request.endpoint.id == "fal-ai/pika/v2.5/text-to-video"


@pytest.mark.parametrize("resolution", ["480p", "720p", "1080p"])
@pytest.mark.parametrize("duration", [5, 10])
def test_text_v25_accepts_every_resolution_and_duration(resolution: str, duration: int) -> None:
    request = build_request(
        "text", prompt="p", model="v2.5", resolution=resolution, duration=duration
    )
    assert isinstance(request, TextRequest)
    assert (request.resolution, request.duration) == (resolution, duration)


@pytest.mark.parametrize("model", ["v2.2", "v2.1", "v2-turbo"])
@pytest.mark.parametrize("aspect_ratio", ["16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3"])
@pytest.mark.parametrize("resolution", ["720p", "1080p"])
def test_older_text_models_accept_every_aspect_ratio_at_720p_and_1080p(
    model: str, aspect_ratio: str, resolution: str
) -> None:
    request = build_request(
        Mode.TEXT,
        prompt="p",
        model=model,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        duration=10,
        seed=7,
    )
    assert isinstance(request, TextRequest)
    assert (request.model, request.aspect_ratio, request.resolution) == (
        model,
        aspect_ratio,
        resolution,
    )


@pytest.mark.parametrize("model", [None, "v2.2", "v2.1", "v2-turbo"])
@pytest.mark.parametrize("resolution", [None, "720p", "1080p"])
def test_animate_accepts_its_models_and_hd_resolutions(
    model: str | None, resolution: str | None
) -> None:
    request = build_request(
        "animate", image=image(), prompt="smile", model=model, resolution=resolution, duration=5
    )
    assert isinstance(request, AnimateRequest)
    assert request.model == (model or "v2.2")
    assert request.resolution == resolution


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_frames_accepts_2_to_5_images_in_option_order(count: int) -> None:
    request = build_request("frames", **frames(count))
    assert isinstance(request, FramesRequest)
    assert request.images == tuple(image(i) for i in range(1, count + 1))
    assert request.transitions is None
    assert request.total_duration == 5 * (count - 1)


def test_frames_skipped_image_slots_close_up() -> None:
    request = build_request("frames", image1=image(1), image3=image(3), image5=image(5))
    assert isinstance(request, FramesRequest)
    assert request.images == (image(1), image(3), image(5))


def test_frames_durations_and_prompts_make_one_transition_each() -> None:
    request = build_request(
        "frames", **frames(4), durations=" 3, 4 ,10", prompts="zoom in | | spin", prompt="main"
    )
    assert isinstance(request, FramesRequest)
    assert request.transitions == (
        Transition(duration=3, prompt="zoom in"),
        Transition(duration=4, prompt=None),
        Transition(duration=10, prompt="spin"),
    )
    assert request.prompt == "main"
    assert request.total_duration == 17


def test_frames_prompts_alone_default_each_duration_to_5() -> None:
    request = build_request("frames", **frames(3), prompts="a|b")
    assert isinstance(request, FramesRequest)
    assert request.transitions == (
        Transition(duration=5, prompt="a"),
        Transition(duration=5, prompt="b"),
    )


def test_frames_durations_alone_leave_transition_prompts_unset() -> None:
    request = build_request("frames", **frames(2), durations="8")
    assert isinstance(request, FramesRequest)
    assert request.transitions == (Transition(duration=8),)


def test_frames_may_total_exactly_25_seconds() -> None:
    request = build_request("frames", **frames(5), durations="10,5,5,5")
    assert isinstance(request, FramesRequest)
    assert request.total_duration == 25


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6])
def test_scenes_accepts_1_to_6_images(count: int) -> None:
    options = {f"image{i}": image(i) for i in range(1, count + 1)}
    request = build_request("scenes", prompt="a duck and a man", **options)
    assert isinstance(request, ScenesRequest)
    assert len(request.images) == count


@pytest.mark.parametrize("ingredients_mode", ["precise", "creative"])
def test_scenes_accepts_every_option(ingredients_mode: str) -> None:
    request = build_request(
        "scenes",
        image1=image(1),
        image2=image(2),
        prompt="p",
        ingredients_mode=ingredients_mode,
        aspect_ratio="9:16",
        resolution="720p",
        duration=10,
        negative_prompt="blur",
        seed=0,
    )
    assert isinstance(request, ScenesRequest)
    assert request.ingredients_mode == ingredients_mode
    assert request.seed == 0


@pytest.mark.parametrize(
    "effect",
    [
        "Cake-ify", "Crumble", "Crush", "Decapitate", "Deflate", "Dissolve", "Explode", "Eye-pop",
        "Inflate", "Levitate", "Melt", "Peel", "Poke", "Squish", "Ta-da", "Tear",
    ],
)  # fmt: skip
def test_effect_accepts_each_of_the_16_effects(effect: str) -> None:
    request = build_request("effect", image=image(), effect=effect)
    assert isinstance(request, EffectRequest)
    assert request.effect == effect


def test_effect_is_matched_without_regard_to_case_and_keeps_pikas_spelling() -> None:
    request = build_request("effect", image=image(), effect=" eye-POP ")
    assert isinstance(request, EffectRequest)
    assert request.effect == "Eye-pop"


@pytest.mark.parametrize(
    "options",
    [
        {"image": image()},
        {"prompt": "a red hat"},
        {"image": image(), "region": "the hat", "prompt": "a crown"},
    ],
)
def test_swap_accepts_an_image_or_a_prompt(options: dict[str, Any]) -> None:
    request = build_request("swap", video=video(), **options)
    assert isinstance(request, SwapRequest)


def test_add_takes_a_video_and_an_image() -> None:
    request = build_request("add", video=video(), image=image(), prompt="a dog")
    assert isinstance(request, AddRequest)
    assert request.inputs == [video(), image()]


@pytest.mark.parametrize(("raw", "seed"), [(0, 0), (4294967295, 4294967295), (" 42 ", 42)])
def test_seed_accepts_0_to_2_to_the_32_minus_1(raw: object, seed: int) -> None:
    request = build_request("text", prompt="p", seed=raw)
    assert isinstance(request, TextRequest)
    assert request.seed == seed


def test_choice_strings_as_discord_gives_them_are_accepted() -> None:
    request = build_request(
        "text", prompt="p", model="V2.2", resolution="1080P", duration="10", aspect_ratio=" 1:1 "
    )
    assert isinstance(request, TextRequest)
    assert (request.model, request.resolution, request.duration, request.aspect_ratio) == (
        "v2.2",
        "1080p",
        10,
        "1:1",
    )


def test_none_options_are_ignored_even_when_the_command_lacks_them() -> None:
    request = build_request("effect", image=image(), effect="Melt", durations=None, model=None)
    assert isinstance(request, EffectRequest)


# --- text cleaning --------------------------------------------------------------------------


def test_every_text_option_is_trimmed_and_empty_optional_text_is_unset() -> None:
    request = build_request(
        "swap", video=video(), prompt="  a crown \n", region="\t", negative_prompt="   "
    )
    assert isinstance(request, SwapRequest)
    assert (request.prompt, request.region, request.negative_prompt) == ("a crown", None, None)


def test_control_characters_are_removed_but_newlines_and_tabs_kept() -> None:
    request = build_request("text", prompt="\x1b[31mred\x00 cat\r\non a\tmat\u202e\x7f\x85")
    assert isinstance(request, TextRequest)
    assert request.prompt == "[31mred cat\non a\tmat"


def test_clean_text_keeps_emoji_joiners_and_non_latin_text() -> None:
    family = "👨\u200d👩\u200d👧"
    assert clean_text(f" {family} القطة 猫 ") == f"{family} القطة 猫"


def test_a_prompt_of_exactly_1500_characters_after_trimming_is_accepted() -> None:
    request = build_request("text", prompt="  " + "x" * 1500 + "  ")
    assert isinstance(request, TextRequest)
    assert len(request.prompt) == 1500


# --- refusals -------------------------------------------------------------------------------


def test_aspect_ratio_with_text_v25_names_the_models_that_accept_it() -> None:
    error = refused("text", prompt="p", aspect_ratio="16:9")
    assert error.option == "aspect_ratio"
    assert str(error) == (
        "aspect_ratio isn't available with text model v2.5; pick model v2.2, v2.1 or v2-turbo "
        "for aspect ratios, or leave aspect_ratio out."
    )


@pytest.mark.parametrize("model", ["v2.2", "v2.1", "v2-turbo"])
def test_480p_with_older_text_models_names_v25(model: str) -> None:
    error = refused("text", prompt="p", model=model, resolution="480p")
    assert error.option == "resolution"
    message = str(error)
    assert message.startswith("480p is only available with text model v2.5")
    assert f"model {model} makes 720p or 1080p" in message
    assert "choose model v2.5" in message


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "animate", "image": image(), "prompt": "p"},
        {"mode": "frames", **frames(2)},
        {"mode": "scenes", "image1": image(), "prompt": "p"},
    ],
)
def test_480p_outside_text_says_only_text_v25_makes_it(options: dict[str, Any]) -> None:
    mode = options.pop("mode")
    error = refused(mode, resolution="480p", **options)
    assert error.option == "resolution"
    assert str(error) == (
        f"480p is only available with text v2.5; /pika {mode} makes 720p or 1080p. "
        "Pick 720p or 1080p, or leave resolution out."
    )


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("aspect_ratio", "7:3", "16:9, 9:16, 1:1, 4:5, 5:4, 3:2 or 2:3"),
        ("resolution", "4k", "480p, 720p or 1080p"),
        ("model", "v3", "v2.5, v2.2, v2.1 or v2-turbo"),
    ],
)
def test_unknown_text_choices_are_refused_with_the_allowed_values(
    option: str, value: str, allowed: str
) -> None:
    options = {"prompt": "p", "model": "v2.2", option: value}
    error = refused("text", **options)
    assert error.option == option
    assert f'{option} "{value}" isn\'t a choice' in str(error)
    assert allowed in str(error)


@pytest.mark.parametrize("duration", [0, 3, 7, 15, "five", "5.0", True])
def test_duration_other_than_5_or_10_is_refused(duration: object) -> None:
    error = refused("text", prompt="p", duration=duration)
    assert error.option == "duration"
    assert "duration must be 5 or 10 seconds" in str(error)


def test_animate_refuses_an_unknown_model() -> None:
    error = refused("animate", image=image(), prompt="p", model="v2.5")
    assert error.option == "model"
    assert "v2.2, v2.1 or v2-turbo" in str(error)


def test_an_option_the_command_lacks_is_refused_with_its_real_options() -> None:
    error = refused("animate", image=image(), prompt="p", aspect_ratio="1:1")
    assert error.option == "aspect_ratio"
    assert "/pika animate has no option aspect_ratio" in str(error)
    assert "resolution, duration or model" in str(error)


def test_an_unknown_mode_is_refused() -> None:
    error = refused("dance", prompt="p")
    assert "text, animate, frames, scenes, effect, swap or add" in str(error)


@pytest.mark.parametrize("prompt", [None, "", "   ", "\n\t ", "\x00\x1b"])
@pytest.mark.parametrize("mode", ["text", "animate", "scenes"])
def test_an_empty_required_prompt_is_refused(mode: str, prompt: str | None) -> None:
    options: dict[str, Any] = {"image": image()} if mode == "animate" else {}
    if mode == "scenes":
        options = {"image1": image()}
    error = refused(mode, prompt=prompt, **options)
    assert error.option == "prompt"
    assert str(error) == (
        "prompt is empty; write what the video should show (up to 1,500 characters)."
    )


@pytest.mark.parametrize(
    ("option", "options"),
    [
        ("prompt", {"mode": "text"}),
        ("negative_prompt", {"mode": "text", "prompt": "p"}),
        ("region", {"mode": "swap", "video": video(), "prompt": "p"}),
        ("prompt", {"mode": "effect", "image": image(), "effect": "Melt"}),
    ],
)
def test_text_over_1500_characters_is_refused(option: str, options: dict[str, Any]) -> None:
    mode = options.pop("mode")
    error = refused(mode, **options, **{option: "x" * 1501})
    assert error.option == option
    assert f"{option} is 1,501 characters long; the limit is 1,500" in str(error)


def test_a_transition_prompt_over_1500_characters_is_refused() -> None:
    error = refused("frames", **frames(3), prompts="ok|" + "y" * 1600)
    assert error.option == "prompts"
    assert "1,600 characters long; the limit is 1,500" in str(error)


@pytest.mark.parametrize("seed", [-1, 2**32, 10**20, "abc", "1.5", 2.5, True])
def test_seed_outside_0_to_2_to_the_32_minus_1_is_refused(seed: object) -> None:
    error = refused("text", prompt="p", seed=seed)
    assert error.option == "seed"
    assert "seed must be a whole number from 0 to 4294967295" in str(error)


@pytest.mark.parametrize("count", [0, 1])
def test_frames_with_fewer_than_2_images_is_refused(count: int) -> None:
    error = refused("frames", **frames(count))
    assert error.option == "images"
    assert str(error) == f"/pika frames takes 2 to 5 images (image1 to image5); you gave {count}."


def test_frames_image_count_is_judged_before_durations() -> None:
    error = refused("frames", image1=image(), durations="5,5")
    assert "takes 2 to 5 images" in str(error)


@pytest.mark.parametrize(("durations", "given"), [("5", 1), ("5,5,5", 3), ("1,1,1,1", 4)])
def test_frames_durations_count_must_equal_images_minus_one(durations: str, given: int) -> None:
    error = refused("frames", **frames(3), durations=durations)
    assert error.option == "durations"
    message = str(error)
    assert f"durations has {given} value" in message
    assert "3 images make 2 transitions; give 2 (e.g. 5,5)" in message


@pytest.mark.parametrize("bad", ["0", "-1", "3.5", "abc", "", "5 5", "²", "1e1"])
def test_each_frames_duration_must_be_a_whole_number_of_at_least_1(bad: str) -> None:
    error = refused("frames", **frames(3), durations=f"5,{bad}")
    assert error.option == "durations"
    message = str(error)
    assert "durations must be whole seconds of at least 1, separated by commas" in message
    assert f'"{bad}" isn\'t one' in message


def test_frames_durations_over_25_seconds_in_total_are_refused() -> None:
    error = refused("frames", **frames(5), durations="10,10,5,1")
    assert error.option == "durations"
    assert str(error) == (
        "The transitions add up to 26 s; the total may be at most 25 s. Shorten some durations."
    )


@pytest.mark.parametrize(("prompts", "given"), [("a", 1), ("a|b|c", 3), ("a|b|", 3)])
def test_frames_prompts_count_must_equal_images_minus_one(prompts: str, given: int) -> None:
    error = refused("frames", **frames(3), prompts=prompts)
    assert error.option == "prompts"
    message = str(error)
    assert f"prompts has {given} entr" in message
    assert "3 images make 2 transitions; give 2, separated by |" in message


def test_scenes_without_images_is_refused() -> None:
    error = refused("scenes", prompt="p")
    assert error.option == "images"
    assert str(error) == "/pika scenes takes 1 to 6 images (image1 to image6); you gave 0."


def test_scenes_with_7_images_is_refused_also_when_rebuilt_from_data() -> None:
    # Seven images can only arrive as data: the command has six slots.
    data = {"mode": "scenes", "images": [image(i).model_dump() for i in range(7)], "prompt": "p"}
    with pytest.raises(InvalidRequest, match=r"takes 1 to 6 images .*you gave 7"):
        parse_request(data)


def test_scenes_refuses_an_unknown_ingredients_mode() -> None:
    error = refused("scenes", image1=image(), prompt="p", ingredients_mode="wild")
    assert error.option == "ingredients_mode"
    assert "precise or creative" in str(error)


def test_effect_refuses_an_unknown_effect_and_lists_all_16() -> None:
    error = refused("effect", image=image(), effect="Bounce")
    assert error.option == "effect"
    assert 'effect "Bounce" isn\'t a choice' in str(error)
    assert "Cake-ify, Crumble, Crush" in str(error)
    assert "Ta-da or Tear" in str(error)


def test_effect_without_an_effect_is_refused() -> None:
    error = refused("effect", image=image())
    assert error.option == "effect"
    assert "needs an effect" in str(error)


@pytest.mark.parametrize("options", [{}, {"region": "the hat"}, {"prompt": "   "}])
def test_swap_without_image_or_prompt_is_refused(options: dict[str, Any]) -> None:
    error = refused("swap", video=video(), **options)
    assert error.option == "image"
    assert "attach an image or write a prompt" in str(error)


@pytest.mark.parametrize(
    ("mode", "options", "option", "needs"),
    [
        ("animate", {"prompt": "p"}, "image", "needs an image"),
        ("effect", {"effect": "Melt"}, "image", "needs an image"),
        ("add", {"video": video()}, "image", "needs an image"),
        ("add", {"image": image()}, "video", "needs an MP4, MOV or WebM video"),
        ("swap", {"prompt": "p"}, "video", "needs an MP4, MOV or WebM video"),
    ],
)
def test_a_missing_file_is_refused(
    mode: str, options: dict[str, Any], option: str, needs: str
) -> None:
    error = refused(mode, **options)
    assert error.option == option
    assert f"/pika {mode} {needs}" in str(error)


def test_a_video_given_as_an_image_is_refused() -> None:
    error = refused("animate", image=video(), prompt="p")
    assert error.option == "image"
    assert "image must be a PNG, JPEG or WebP image, not video/mp4" in str(error)


def test_an_image_given_as_the_video_is_refused() -> None:
    error = refused("add", video=image(), image=image(2))
    assert error.option == "video"
    assert "video must be an MP4, MOV or WebM video, not image/png" in str(error)


def test_several_problems_are_all_reported() -> None:
    error = refused("text", prompt=" ", seed=-5)
    assert "prompt is empty" in str(error)
    assert "seed must be" in str(error)


def test_a_long_bad_value_is_cut_short_in_the_message() -> None:
    error = refused("effect", image=image(), effect="z" * 500)
    assert "z" * 39 + "…" in str(error)
    assert "z" * 41 not in str(error)


def test_messages_never_show_pydantic_text() -> None:
    error = refused("text", prompt=["not", "text"], seed="x")
    assert "pydantic" not in str(error).lower()
    assert "Input should" not in str(error)
    assert "prompt must be text" in str(error)


# --- check_options --------------------------------------------------------------------------


def test_check_options_accepts_any_stand_in_for_files() -> None:
    attachment = object()
    check_options("frames", image1=attachment, image2=attachment, durations="7")


def test_check_options_refuses_what_build_request_refuses() -> None:
    with pytest.raises(InvalidRequest, match="3 values, but 2 images make 1 transition"):
        check_options("frames", image1=object(), image2=object(), durations="5,5,5")
    with pytest.raises(InvalidRequest, match="attach an image or write a prompt"):
        check_options("swap", video=object())
