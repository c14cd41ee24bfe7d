"""The official-or-labelled verdict: hand-made recipes and settings with known answers."""

from ts_eval.official import Verdict, verdict

RECIPE = {
    "n_samples": 1,
    "image_format": "jpeg",
    "prompt_rewrites": False,
    "scorer": {"name": "vqascore", "model": "clip-flant5-xxl", "weights_sha256": {"one_of": ["a" * 64, "b" * 64]}},
}
SCORER = {"name": "vqascore", "model": "clip-flant5-xxl", "weights_sha256": "b" * 64, "batch_size": 8}


def settings(**task):
    return {
        "task": {"name": "genai-bench", "variant": "527", "split": "all", "skill": None, "limit": None, **task},
        "n_samples": 1,
        "image_format": "jpeg",
        "prompt_rewrites": None,
    }


def test_every_recipe_setting_equal_is_official_and_extra_settings_are_ignored():
    found = verdict(RECIPE, settings(), SCORER, default_split="all")
    assert found == Verdict(True, (), None, None)
    assert found.label == "official"


def test_first_difference_names_the_setting_and_both_values():
    found = verdict(RECIPE, settings(), {**SCORER, "model": "tiny-random"}, default_split="all")
    assert not found.official
    assert found.differences == ("scorer.model=tiny-random (official: clip-flant5-xxl)",)
    assert found.label == "unofficial: scorer.model=tiny-random"


def test_one_of_accepts_each_listed_value_only():
    assert verdict(RECIPE, settings(), {**SCORER, "weights_sha256": "a" * 64}, default_split="all").official
    found = verdict(RECIPE, settings(), {**SCORER, "weights_sha256": "c" * 64}, default_split="all")
    assert found.first_difference.startswith("scorer.weights_sha256=" + "c" * 64)


def test_generator_side_settings_and_missing_scorer_fields():
    png = {**settings(), "image_format": "png"}
    assert verdict(RECIPE, png, SCORER, default_split="all").differences == ("image_format=png (official: jpeg)",)
    rewritten = {**settings(), "prompt_rewrites": {"path": "r.jsonl", "sha256": "x"}}
    assert verdict(RECIPE, rewritten, SCORER, default_split="all").first_difference.startswith("prompt_rewrites=true")
    no_weights = {k: v for k, v in SCORER.items() if k != "weights_sha256"}
    assert verdict(RECIPE, settings(), no_weights, default_split="all").first_difference.startswith(
        "scorer.weights_sha256=missing"
    )
    assert not verdict(RECIPE, settings(), None, default_split="all").official  # not scored yet


def test_limit_and_skill_make_a_subset_a_split_is_named_apart():
    found = verdict(RECIPE, settings(limit=20, skill="counting"), SCORER, default_split="all")
    assert found.official and found.subset == "skill=counting, limit=20"
    assert found.label == "official; subset: skill=counting, limit=20"
    hard = verdict(RECIPE, settings(split="hard"), SCORER, default_split="all")
    assert hard.official and hard.subset is None and hard.split == "hard"


def test_no_recipe_is_never_official_and_round_trips():
    found = verdict(None, settings(), SCORER, default_split="all")
    assert not found.official and "no official recipe" in found.label
    assert Verdict.from_dict(found.to_dict()) == found


def test_sha256_prefix_accepts_a_digest_starting_with_a_listed_prefix_only():
    recipe = {**RECIPE, "scorer": {"name": "geneval", "checkpoint_sha256": {"sha256_prefix": ["743b7d99", "c9d0c4f2"]}}}
    geneval = {"name": "geneval", "checkpoint_sha256": "c9d0c4f2" + "0" * 56}
    assert verdict(recipe, settings(), geneval, default_split="all").official
    for wrong in ("0" * 64, "743b7d9", None):  # another file, a shorter string, no checkpoint
        found = verdict(recipe, settings(), {**geneval, "checkpoint_sha256": wrong}, default_split="all")
        assert found.differences == (
            f"scorer.checkpoint_sha256={_shown(wrong)} (official: 743b7d99... or c9d0c4f2...)",
        )
    missing = verdict(recipe, settings(), {"name": "geneval"}, default_split="all")
    assert missing.first_difference.startswith("scorer.checkpoint_sha256=missing")


def _shown(value):
    return "null" if value is None else value
