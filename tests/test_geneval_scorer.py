"""The geneval scorer's glue: colour crops, which objects get a colour, official ordering, bad images."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.support import record_edit
from ts_eval.cli import main
from ts_eval.errors import UsageError
from ts_eval.geneval.color import BACKGROUND, DummyColorClassifier, color_crop, color_prompts
from ts_eval.geneval.detectors import DummyDetector, Instances
from ts_eval.geneval.scorer import GenEvalScorer
from ts_eval.records import Prompt, ScoreRequest
from ts_eval.store import read_jsonl
from ts_eval.tasks import load_task


def test_color_crop_paints_outside_the_mask_grey_then_cuts_the_box():
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:, :15] = (255, 0, 0)
    pixels[:, 15:] = (0, 0, 255)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 5:12] = True
    crop = np.asarray(color_crop(Image.fromarray(pixels), [5, 5, 20, 15], mask))
    assert crop.shape == (10, 15, 3)
    assert (crop[:, :7] == (255, 0, 0)).all()  # inside the mask: the image
    assert (crop[:, 7:] == (153, 153, 153)).all()  # outside: #999, the blue never shows
    assert np.asarray(Image.new("RGB", (1, 1), BACKGROUND))[0, 0].tolist() == [153, 153, 153]


def test_color_crop_rounds_the_box_like_pil():
    image = Image.new("RGB", (30, 30))
    # PIL rounds half to even: x 0.5 -> 0, 10.5 -> 10; y 1.5 -> 2, 11.49 -> 11 (truncation would give 10 x 10).
    assert color_crop(image, [0.5, 1.5, 10.5, 11.49], None).size == (10, 9)


def test_color_crop_rejects_a_mask_of_another_size():
    with pytest.raises(ValueError, match="mask of shape"):
        color_crop(Image.new("RGB", (30, 20)), [0, 0, 5, 5], np.ones((30, 20), bool))


def test_official_templates():
    assert color_prompts("fire hydrant", "red") == [
        "a photo of a red fire hydrant",
        "a photo of a red-colored fire hydrant",
        "a photo of a red object",
    ]


def test_dummy_color_classifier_is_the_nearest_reference():
    crops = [Image.new("RGB", (4, 4), c) for c in [(250, 10, 10), (10, 10, 240), (250, 250, 250), (150, 75, 20)]]
    assert DummyColorClassifier().classify(crops, ["car"] * 4) == ["red", "blue", "white", "brown"]


def test_dummy_detector_is_deterministic_and_pixel_seeded():
    a = Image.fromarray(np.full((32, 32, 3), 7, np.uint8))
    b = Image.fromarray(np.full((32, 32, 3), 8, np.uint8))
    first, again, other = DummyDetector().detect([a, a, b], ["", "", ""])
    assert np.array_equal(first.boxes, again.boxes) and np.array_equal(first.scores, again.scores)
    assert not (len(first) == len(other) and np.array_equal(first.scores, other.scores))


# -- which objects get a colour, in which order --------------------------------------------------------------


class StubDetector:
    """Returns fixed instances, to test the scorer's bookkeeping around any detector."""

    name = "stub"

    def __init__(self, instances: Instances):
        self.instances = instances

    def describe(self):
        return {"name": self.name}

    def detect(self, images, paths):
        return [self.instances for _ in images]


class RecordingColors(DummyColorClassifier):
    def __init__(self):
        self.calls = []

    def classify(self, crops, class_names):
        self.calls.append(list(class_names))
        return super().classify(crops, class_names)


@pytest.fixture
def scorer():
    return GenEvalScorer({"detector": "dummy"}, task=load_task("geneval"), device="cpu", batch_size=4)


def request(tmp_path, metadata: dict, k: int = 0) -> ScoreRequest:
    path = tmp_path / f"{k}.png"
    Image.new("RGB", (200, 100), (200, 20, 20)).save(path)
    prompt = Prompt("00000", metadata["prompt"], (metadata["tag"],), metadata)
    return ScoreRequest(prompt, k, str(path), hashlib.sha256(path.read_bytes()).hexdigest())


def test_colour_only_for_the_16_best_objects_above_the_lower_threshold(scorer, tmp_path):
    scores = np.array([0.5 + i / 100 for i in range(20)] + [0.3, 0.2], np.float32)
    n = len(scores)
    scorer.detector = StubDetector(
        Instances(
            boxes=np.tile(np.float32([0, 0, 10, 10]), (n, 1)), scores=scores, labels=np.full(n, 2, np.int64), masks=None
        )
    )  # label 2 = car
    scorer.colors = RecordingColors()
    metadata = {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a red car"}
    (scored,) = scorer.score([request(tmp_path, metadata)])
    cars = scored.detections["car"]
    assert np.array_equal(np.float32([c["score"] for c in cars]), np.sort(scores)[::-1])  # float32-exact
    assert [c["color"] is not None for c in cars] == [True] * 16 + [False] * 6
    assert scorer.colors.calls == [["car"] * 16]  # one batched call
    assert scored.samples[0].value == 1.0 and scored.samples[0].reason is None


def test_ties_keep_the_official_argsort_order(scorer, tmp_path):
    boxes = np.float32([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])
    scorer.detector = StubDetector(
        Instances(boxes=boxes, scores=np.float32([0.5, 0.5, 0.5]), labels=np.array([2, 2, 2]), masks=None)
    )
    metadata = {"tag": "single_object", "include": [{"class": "car", "count": 1}], "prompt": "a car"}
    (scored,) = scorer.score([request(tmp_path, metadata)])
    expected = np.argsort(np.float32([0.5, 0.5, 0.5]))[::-1]
    assert [c["box"][0] for c in scored.detections["car"]] == [float(boxes[i][0]) for i in expected]


def test_scorer_rejects_unknown_options_and_backends():
    task = load_task("geneval")
    with pytest.raises(UsageError, match="unknown argument"):
        GenEvalScorer({"detektor": "dummy"}, task=task)
    with pytest.raises(UsageError, match="unknown GenEval detector 'yolo'"):
        GenEvalScorer({"detector": "yolo"}, task=task)
    with pytest.raises(UsageError, match="max_overlap"):
        GenEvalScorer({"detector": "dummy", "max_overlap": "0"}, task=task)


# -- bad images: one line, exit 2 ------------------------------------------------------------------------


@pytest.fixture
def small_run(tmp_path):
    out = tmp_path / "R"
    assert (
        main(
            [
                "run",
                "geneval",
                "--model",
                "dummy",
                "--detector",
                "dummy",
                "--limit",
                "2",
                "--n-samples",
                "2",
                "--out",
                str(out),
                "--quiet",
                "--no-cache",
            ]
        )
        == 0
    )
    return out


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ts-eval: error: "), err
    return err[0]


def test_corrupt_image_is_one_line(small_run, capsys):
    image = small_run / "images" / "00001" / "0001.png"
    image.write_bytes(b"not a png at all")
    table = read_jsonl(small_run / "images.jsonl")
    for row in table:
        if row["path"].endswith("00001/0001.png"):
            row["sha256"] = hashlib.sha256(image.read_bytes()).hexdigest()
    (small_run / "images.jsonl").write_text("".join(json.dumps(r) + "\n" for r in table))
    record_edit(small_run, "images.jsonl")  # the bytes are recorded as they are: the scorer must cope
    summary = (small_run / "summary.json").read_bytes()
    capsys.readouterr()
    assert main(["score", str(small_run), "--detector", "dummy", "--no-cache", "--quiet"]) == 2
    assert "0001.png: not a readable image" in _one_line(capsys)
    assert (small_run / "summary.json").read_bytes() == summary


def test_missing_image_is_one_line(small_run, capsys):
    (small_run / "images" / "00000" / "0000.png").unlink()
    capsys.readouterr()
    assert main(["score", str(small_run), "--detector", "dummy", "--no-cache", "--quiet"]) == 2
    assert "00000/0000 is missing" in _one_line(capsys)


def test_corrupt_image_in_an_official_layout_folder(small_run, tmp_path, capsys):
    folder = tmp_path / "official"
    assert main(["geneval", "export", str(small_run), str(folder), "--quiet"]) == 0
    (folder / "00001" / "samples" / "0000.png").write_bytes(b"\x89PNG broken")
    capsys.readouterr()
    code = main(
        [
            "run",
            "geneval",
            "--model",
            "folder",
            "--model-arg",
            f"path={folder}",
            "--detector",
            "dummy",
            "--limit",
            "2",
            "--n-samples",
            "2",
            "--out",
            str(tmp_path / "F"),
            "--quiet",
            "--no-cache",
        ]
    )
    assert code == 2
    assert "not a readable image" in _one_line(capsys)


def test_score_copies_are_independent(small_run, tmp_path):
    # A copied run rescored gives the same samples: nothing depends on absolute paths.
    copy = tmp_path / "copy"
    shutil.copytree(small_run, copy)
    assert main(["rescore", str(copy), "--quiet"]) == 0
    assert (copy / "samples.jsonl").read_bytes() == (small_run / "samples.jsonl").read_bytes()
