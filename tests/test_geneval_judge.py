"""GenEval's decision rules on hand-built detections, at every edge of the official evaluate_images.py."""

from __future__ import annotations

import pytest

from ts_eval.errors import UsageError
from ts_eval.geneval.rules import (
    COLORS,
    DetectedObject,
    JudgeSettings,
    MissingColor,
    box_iou,
    check_metadata,
    judge,
    kept_objects,
    objects_from_row,
    relative_position,
)

BENCH = {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"}
TWO_CLOCKS = {
    "tag": "counting",
    "include": [{"class": "clock", "count": 2}],
    "exclude": [{"class": "clock", "count": 3}],
    "prompt": "a photo of two clocks",
}
RED_CAR = {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"}
DOG_RIGHT_OF_BEAR = {
    "tag": "position",
    "prompt": "a photo of a dog right of a teddy bear",
    "include": [{"class": "teddy bear", "count": 1}, {"class": "dog", "count": 1, "position": ["right of", 0]}],
}
PURPLE_GLASS_BLACK_APPLE = {
    "tag": "color_attr",
    "prompt": "a photo of a purple wine glass and a black apple",
    "include": [
        {"class": "wine glass", "count": 1, "color": "purple"},
        {"class": "apple", "count": 1, "color": "black"},
    ],
}


def obj(score: float, box=(0, 0, 10, 10), color: str | None = None) -> DetectedObject:
    return DetectedObject(tuple(float(v) for v in box), score, color)


def boxes_apart(x: float) -> tuple[tuple, tuple]:
    """A 100x100 teddy bear at the origin and a 100x100 dog whose centre lies x pixels to its right."""
    return (0, 0, 100, 100), (x, 0, x + 100, 100)


# -- thresholds ----------------------------------------------------------------------------------------


def test_score_must_exceed_threshold_strictly():
    assert not judge(BENCH, {"bench": [obj(0.3)]}).correct
    assert judge(BENCH, {"bench": [obj(0.3001)]}).correct


def test_threshold_is_compared_in_float32_like_the_official_numpy_arrays():
    # 0.3 + 1e-9 is above 0.3 in float64 but equal to it in float32, where the official comparison happens.
    assert 0.3 + 1e-9 > 0.3
    assert not judge(BENCH, {"bench": [obj(0.3 + 1e-9)]}).correct


def test_counting_uses_the_0_9_threshold():
    assert judge(TWO_CLOCKS, {"clock": [obj(0.95), obj(0.91)]}).correct
    verdict = judge(TWO_CLOCKS, {"clock": [obj(0.95), obj(0.9)]})
    assert not verdict.correct and verdict.reason == "expected clock>=2, found 1"
    # The same 0.5 detection counts for a single-object prompt but not for counting.
    assert judge(BENCH, {"bench": [obj(0.5)]}).correct
    assert not judge({**BENCH, "tag": "counting"}, {"bench": [obj(0.5)]}).correct


def test_counting_exclude_clause_fails_on_one_object_too_many():
    verdict = judge(TWO_CLOCKS, {"clock": [obj(0.95), obj(0.93), obj(0.92)]})
    assert not verdict.correct and verdict.reason == "expected clock<3, found 3"
    # The third clock below the counting threshold is not an object at all.
    assert judge(TWO_CLOCKS, {"clock": [obj(0.95), obj(0.93), obj(0.89)]}).correct


def test_custom_thresholds():
    settings = JudgeSettings(threshold=0.6)
    assert not judge(BENCH, {"bench": [obj(0.5)]}, settings).correct
    assert judge(BENCH, {"bench": [obj(0.61)]}, settings).correct


# -- missing class, other classes ------------------------------------------------------------------------


def test_missing_class():
    verdict = judge(BENCH, {})
    assert not verdict.correct and verdict.reason == "expected bench>=1, found 0"
    assert judge(BENCH, {"bench": [obj(0.1), obj(0.29)]}).reason == "expected bench>=1, found 0"
    assert not judge(BENCH, {"chair": [obj(0.99)]}).correct


def test_extra_objects_of_other_classes_do_not_matter_without_exclude():
    assert judge(BENCH, {"bench": [obj(0.8)], "person": [obj(0.99), obj(0.98)]}).correct


# -- the 16-object cap -----------------------------------------------------------------------------------


def test_at_most_16_objects_per_class_are_kept():
    many = {"tag": "counting", "include": [{"class": "person", "count": 17}], "prompt": "seventeen people"}
    people = [obj(0.95 + i * 0.001, box=(i * 20, 0, i * 20 + 10, 10)) for i in range(20)]
    verdict = judge(many, {"person": people})
    assert not verdict.correct and verdict.reason == "expected person>=17, found 16"
    assert judge(many, {"person": people}, JudgeSettings(max_objects=17)).correct


def test_cap_keeps_the_best_16_and_exclusion_sees_only_those():
    crowd = {
        "tag": "single_object",
        "include": [{"class": "person", "count": 1}],
        "exclude": [{"class": "person", "count": 17}],
        "prompt": "people",
    }
    people = [obj(0.5, box=(i * 20, 0, i * 20 + 10, 10)) for i in range(30)]
    assert judge(crowd, {"person": people}).correct  # 30 detected, 16 kept: "< 17" holds
    kept = kept_objects([obj(0.31 + i / 100) for i in range(30)], 0.3, JudgeSettings())
    assert len(kept) == 16 and kept[0].score == pytest.approx(0.6) and kept[-1].score == pytest.approx(0.45)


# -- overlapping boxes -----------------------------------------------------------------------------------


def test_overlapping_boxes_are_all_kept_by_default():
    same_place = [obj(0.95, box=(0, 0, 50, 50)), obj(0.94, box=(0, 0, 50, 50))]
    assert judge(TWO_CLOCKS, {"clock": same_place}).correct


def test_overlap_suppression_when_enabled_uses_inclusive_pixel_iou():
    a, b = (0, 0, 9, 9), (5, 0, 14, 9)
    assert box_iou(a, b) == pytest.approx(50 / 150)  # 10x10 pixels each, 5x10 shared (exclusive areas give 0.286)
    clocks = [obj(0.95, box=a), obj(0.94, box=b)]
    assert not judge(TWO_CLOCKS, {"clock": clocks}, JudgeSettings(max_overlap=0.3)).correct
    assert judge(TWO_CLOCKS, {"clock": clocks}, JudgeSettings(max_overlap=0.34)).correct


def test_overlap_suppression_runs_after_the_cap():
    # 16 near-duplicates of the best box, then 4 distinct boxes: the cap removes the distinct ones first.
    stacked = [obj(0.99 - i * 0.001, box=(0, 0, 50, 50)) for i in range(16)]
    distinct = [obj(0.9 - i * 0.001, box=(100 + i * 60, 0, 150 + i * 60, 50)) for i in range(4)]
    kept = kept_objects(stacked + distinct, 0.3, JudgeSettings(max_overlap=0.5))
    assert len(kept) == 1


# -- colour ----------------------------------------------------------------------------------------------


def test_wrong_colour():
    assert judge(RED_CAR, {"car": [obj(0.8, color="red")]}).correct
    verdict = judge(RED_CAR, {"car": [obj(0.8, color="blue")]})
    assert not verdict.correct and verdict.reason == "expected red car>=1, found 0 red; and 1 blue"


def test_colour_is_checked_on_the_best_objects_only():
    cars = [obj(0.6, color="red"), obj(0.9, color="blue")]  # unsorted on purpose: the judge ranks by score
    assert not judge(RED_CAR, {"car": cars}).correct
    assert judge(RED_CAR, {"car": [obj(0.9, color="red"), obj(0.6, color="blue")]}).correct


def test_colour_attribution_reports_every_failed_clause():
    verdict = judge(
        PURPLE_GLASS_BLACK_APPLE, {"wine glass": [obj(0.9, color="red")], "apple": [obj(0.9, color="green")]}
    )
    assert verdict.reason.split("\n") == [
        "expected purple wine glass>=1, found 0 purple; and 1 red",
        "expected black apple>=1, found 0 black; and 1 green",
    ]
    assert judge(
        PURPLE_GLASS_BLACK_APPLE, {"wine glass": [obj(0.9, color="purple")], "apple": [obj(0.9, color="black")]}
    ).correct


def test_colour_reason_lists_colours_in_geneval_order():
    two = {"tag": "colors", "include": [{"class": "car", "count": 2, "color": "red"}], "prompt": "two red cars"}
    verdict = judge(two, {"car": [obj(0.9, color="white"), obj(0.8, color="blue")]})
    assert verdict.reason == "expected red car>=2, found 0 red; and 1 blue, 1 white"
    assert COLORS.index("blue") < COLORS.index("white")


def test_missing_colour_is_an_error_not_a_verdict():
    with pytest.raises(MissingColor):
        judge(RED_CAR, {"car": [obj(0.8)]})


# -- position and its 0.1 margin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, expected", [(20, set()), (40, set()), (41, {"right of"}), (-41, {"left of"}), (200, {"right of"})]
)
def test_position_margin_on_one_axis(x, expected):
    bear, dog = boxes_apart(x)
    # offset x, margin 0.1 * (100 + 100) = 20: "right of" needs (x - 20) / x > 0.5, i.e. x > 40.
    assert relative_position(dog, bear) == expected


def test_position_margin_decides_the_verdict():
    bear, dog = boxes_apart(40)
    objects = {"teddy bear": [obj(0.9, box=bear)], "dog": [obj(0.9, box=dog)]}
    verdict = judge(DOG_RIGHT_OF_BEAR, objects)
    assert not verdict.correct and verdict.reason == "expected dog right of target, found  target"
    assert judge(DOG_RIGHT_OF_BEAR, objects, JudgeSettings(position_threshold=0.0)).correct
    bear, dog = boxes_apart(41)
    assert judge(DOG_RIGHT_OF_BEAR, {"teddy bear": [obj(0.9, box=bear)], "dog": [obj(0.9, box=dog)]}).correct


def test_vertical_relations_use_image_coordinates():
    top, bottom = (0, 0, 100, 100), (0, 200, 100, 300)
    assert relative_position(top, bottom) == {"above"}
    assert relative_position(bottom, top) == {"below"}


def test_diagonal_offset_satisfies_neither_axis():
    # Offset (60, 60), margin 20 per axis: each shrunk component is 40 / 84.85 = 0.47 < 0.5.
    assert relative_position((60, 60, 160, 160), (0, 0, 100, 100)) == set()
    # Far enough along the diagonal both relations hold.
    assert relative_position((300, 300, 400, 400), (0, 0, 100, 100)) == {"right of", "below"}


def test_position_without_a_matched_target():
    verdict = judge(DOG_RIGHT_OF_BEAR, {"dog": [obj(0.9, box=(500, 0, 600, 100))]})
    assert verdict.reason.split("\n") == ["expected teddy bear>=1, found 0", "no target for dog to be right of"]


def test_position_is_checked_against_every_target_object():
    two_bears = {
        **DOG_RIGHT_OF_BEAR,
        "include": [{"class": "teddy bear", "count": 2}, {"class": "dog", "count": 1, "position": ["right of", 0]}],
    }
    bears = [obj(0.9, box=(0, 0, 100, 100)), obj(0.8, box=(1000, 0, 1100, 100))]
    assert not judge(two_bears, {"teddy bear": bears, "dog": [obj(0.9, box=(500, 0, 600, 100))]}).correct
    assert judge(two_bears, {"teddy bear": bears, "dog": [obj(0.9, box=(1500, 0, 1600, 100))]}).correct


def test_failed_colour_skips_the_position_check():
    metadata = {
        "tag": "position",
        "prompt": "a red dog right of a teddy bear",
        "include": [
            {"class": "teddy bear", "count": 1},
            {"class": "dog", "count": 1, "color": "red", "position": ["right of", 0]},
        ],
    }
    objects = {"teddy bear": [obj(0.9, box=(0, 0, 100, 100))], "dog": [obj(0.9, box=(20, 0, 120, 100), color="blue")]}
    assert judge(metadata, objects).reason == "expected red dog>=1, found 0 red; and 1 blue"


def test_position_is_computed_in_float32():
    # The official boxes are float32 numpy rows, and so is its arithmetic. Here the dog sits a hair beyond
    # the 0.4 * width boundary: float64 arithmetic says "right of", float32 (official) says nothing.
    x = 40.000003814697266
    assert relative_position((x, 0, x + 100, 100), (0, 0, 100, 100)) == set()
    assert relative_position((40.01, 0, 140.01, 100), (0, 0, 100, 100)) == {"right of"}


# -- reading and checking input --------------------------------------------------------------------------


def test_objects_from_row_validates():
    assert (
        objects_from_row({"car": [{"box": [0, 0, 1, 1], "score": 0.5, "color": "red"}]}, "x")["car"][0].color == "red"
    )
    with pytest.raises(UsageError, match="box of 4"):
        objects_from_row({"car": [{"box": [0, 0, 1], "score": 0.5}]}, "x")
    with pytest.raises(UsageError, match="colour 'teal'"):
        objects_from_row({"car": [{"box": [0, 0, 1, 1], "score": 0.5, "color": "teal"}]}, "x")
    with pytest.raises(UsageError, match="needs 'box'"):
        objects_from_row({"car": [{"score": 0.5}]}, "x")


def test_check_metadata_rejects_unknown_class_and_bad_position():
    names = ["teddy bear", "dog", "bench"]
    check_metadata(DOG_RIGHT_OF_BEAR, names, "x")
    with pytest.raises(UsageError, match="unknown class 'unicorn'"):
        check_metadata({**BENCH, "include": [{"class": "unicorn", "count": 1}]}, names, "x")
    with pytest.raises(UsageError, match="position"):
        check_metadata(
            {**DOG_RIGHT_OF_BEAR, "include": [{"class": "dog", "count": 1, "position": ["right of", 0]}]}, names, "x"
        )
    with pytest.raises(UsageError, match="unknown colour"):
        check_metadata({**BENCH, "include": [{"class": "bench", "count": 1, "color": "teal"}]}, names, "x")
