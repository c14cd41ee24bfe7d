"""Read a run directory back whole, or refuse it in one line: every reader of a run goes through `read_run`.

A run is checked against itself before any number comes out of it: the manifest's recorded sha256 of each
canonical file (an edit or a half-finished stage shows), every expected (prompt, sample) exactly once in
images, samples and detections, each image's seed as the run's seed derives it, image files whose bytes
match, and scores recorded for the image bytes they judged. Damage is a `RunDamaged` (exit 2) that names the
first problem and the command that repairs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ts_eval.errors import UsageError
from ts_eval.records import ImageKey, ImageRecord, Prompt, Sample, image_keys
from ts_eval.seeding import image_seed
from ts_eval.store.files import read_jsonl, sha256_bytes
from ts_eval.store.hashes import verified_sha256
from ts_eval.store.rundir import DETECTIONS, IMAGES, PROMPTS, SAMPLES, RunDir
from ts_eval.tasks import TaskSpec, load_task

Need = Literal["prompts", "images", "detections", "scores"]


class RunDamaged(UsageError):
    """A run directory that contradicts itself; nothing may be computed from it."""


@dataclass(frozen=True)
class Run:
    """A run directory as validated records. `images` is empty for imported results that carry none."""

    path: Path
    manifest: dict[str, Any]
    spec: TaskSpec
    prompts: list[Prompt]
    images: list[ImageRecord]
    samples: list[Sample]
    detections: list[dict[str, Any]] | None

    @property
    def dir(self) -> RunDir:
        return RunDir(self.path)

    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest["settings"]

    @property
    def n_samples(self) -> int:
        return int(self.settings["n_samples"])

    @property
    def image_format(self) -> str:
        return self.settings.get("image_format", "png")

    @property
    def scorer(self) -> dict[str, Any] | None:
        return self.manifest.get("scorer")

    @property
    def metrics(self) -> tuple[str, ...]:
        return run_metrics(self.manifest, self.spec)

    @property
    def metric(self) -> str:
        """The metric the summary aggregates: the scorer's own (e.g. clipscore on GenAI-Bench), else the task's."""
        return (self.scorer or {}).get("metric") or self.spec.metric

    @property
    def keys(self) -> list[ImageKey]:
        return image_keys(self.prompts, self.n_samples)

    def samples_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [(s.prompt_id, s.sample_index, s.metric, s.value) for s in self.samples],
            columns=["prompt_id", "sample_index", "metric", "value"],
        )


def run_metrics(manifest: dict[str, Any], spec: TaskSpec) -> tuple[str, ...]:
    """Every metric the run's scorer writes per image (recorded when scoring; older runs: the summarised one)."""
    recorded = manifest.get("metrics")
    if isinstance(recorded, list) and recorded and all(isinstance(m, str) for m in recorded):
        return tuple(recorded)
    return ((manifest.get("scorer") or {}).get("metric") or spec.metric,)


def read_run(
    path: str | Path, *, need: Need = "scores", tasks_dir: str | None = None, spec: TaskSpec | None = None
) -> Run:
    """Validate and load a run directory up to what the caller needs:

    - `prompts`: manifest and prompts;
    - `images`: every image present with the bytes images.jsonl records (scoring, exporting, viewing);
    - `detections`: every image's detections once (GenEval's rescore: no model, no image files needed);
    - `scores`: every image scored exactly once per metric, for the bytes it had (reports, gates, submissions).
    """
    run_dir = RunDir(path)
    manifest = run_dir.read_manifest()
    where = run_dir.path
    settings = manifest.get("settings")
    settings = settings if isinstance(settings, dict) else {}
    task = settings.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        raise RunDamaged(f"{where}: manifest.json has no settings.task.name; the run is damaged")
    n_samples = settings.get("n_samples")
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
        raise RunDamaged(f"{where}: manifest.json has no valid settings.n_samples; the run is damaged")
    spec = spec or load_task(task["name"], tasks_dir)
    if task.get("version") not in (None, spec.version):
        raise UsageError(
            f"{where} was made with {spec.name} task version {task.get('version')}; this ts-eval "
            f"evaluates version {spec.version}: re-run it"
        )
    check = _Checker(run_dir, manifest)
    prompts = check.prompts()
    keys = image_keys(prompts, n_samples)
    imported = bool(manifest.get("imported"))
    images = (
        []
        if need == "prompts" or imported
        else check.images(keys, task["name"], settings, files_required=need == "images")
    )
    samples: list[Sample] = []
    # For rescore, detections.jsonl is the input (hand-built or edited ones are judged); for scores it must be
    # what the scorer wrote, or the samples no longer follow from it.
    detections = check.detections(keys, as_input=need == "detections") if need in ("detections", "scores") else None
    if need == "scores":
        metrics = run_metrics(manifest, spec)
        samples = check.samples(
            keys, metrics, {(r.prompt_id, r.sample_index): r for r in images}, {p.prompt_id: p.prompt for p in prompts}
        )
    return Run(run_dir.path, manifest, spec, prompts, images, samples, detections)


class _Checker:
    """One run's checks; each returns the validated records or raises RunDamaged with the first problem."""

    def __init__(self, run: RunDir, manifest: dict[str, Any]):
        self.run = run
        files = manifest.get("files")
        self.files = files if isinstance(files, dict) else {}
        self.scored = manifest.get("scorer") is not None

    def _fail(self, problem: str, fix: str) -> RunDamaged:
        return RunDamaged(f"{self.run.path}: {problem}; {fix}")

    def _rows(self, name: str, fix: str, recorded_bytes: bool = True) -> list[dict[str, Any]]:
        path = self.run.file(name)
        data = path.read_bytes()
        recorded = self.files.get(name) if recorded_bytes else None
        if recorded is not None and sha256_bytes(data) != recorded:
            raise self._fail(f"{name} was changed after ts-eval wrote it (sha256 differs from manifest.json)", fix)
        try:
            rows = read_jsonl(path)
        except UsageError as exc:
            raise self._fail(str(exc).removeprefix(f"{path}: "), fix) from None
        bad = next((n for n, row in enumerate(rows, start=1) if not isinstance(row, dict)), None)
        if bad:
            raise self._fail(f"{name} line {bad} is not a JSON object", fix)
        return rows

    # -- prompts -------------------------------------------------------------------------------------
    def prompts(self) -> list[Prompt]:
        fix = "the run cannot be repaired: run it again into a new --out"
        if not self.run.file(PROMPTS).is_file():
            raise self._fail(f"{PROMPTS} is missing", fix)
        prompts = []
        for number, row in enumerate(self._rows(PROMPTS, fix), start=1):
            try:
                prompt = Prompt.from_row(row)
            except (KeyError, TypeError):
                raise self._fail(f"{PROMPTS} line {number} lacks prompt_id or prompt", fix) from None
            if not isinstance(prompt.prompt_id, str) or not isinstance(prompt.prompt, str):
                raise self._fail(f"{PROMPTS} line {number}: prompt_id and prompt must be strings", fix)
            prompts.append(prompt)
        ids = [p.prompt_id for p in prompts]
        if not ids:
            raise self._fail(f"{PROMPTS} holds no prompts", fix)
        if len(set(ids)) != len(ids):
            twice = next(pid for pid in ids if ids.count(pid) > 1)
            raise self._fail(f"{PROMPTS} lists prompt {twice} twice", fix)
        return prompts

    # -- images --------------------------------------------------------------------------------------
    def images(
        self, keys: list[ImageKey], task: str, settings: dict[str, Any], *, files_required: bool
    ) -> list[ImageRecord]:
        fix = (
            "re-run the command that made it (settings in manifest.json): only missing or damaged images are made again"
        )
        if not self.run.file(IMAGES).is_file():
            if not files_required and not self.scored:
                return []
            raise self._fail(f"{IMAGES} is missing (generation did not finish)", fix)
        expected = set(keys)
        found: dict[ImageKey, ImageRecord] = {}
        image_format = settings.get("image_format", "png")
        run_seed = settings.get("seed")
        for number, row in enumerate(self._rows(IMAGES, fix), start=1):
            try:
                record = ImageRecord(
                    row["prompt_id"], int(row["sample_index"]), int(row["seed"]), str(row["path"]), str(row["sha256"])
                )
            except (KeyError, TypeError, ValueError):
                raise self._fail(
                    f"{IMAGES} line {number} lacks prompt_id, sample_index, seed, path or sha256", fix
                ) from None
            key = (record.prompt_id, record.sample_index)
            if key not in expected:
                raise self._fail(f"{IMAGES} line {number} lists image {_name(key)}, which this run does not have", fix)
            if key in found:
                raise self._fail(f"{IMAGES} lists image {_name(key)} twice", fix)
            if isinstance(run_seed, int) and record.seed != image_seed(task, key[0], key[1], run_seed):
                raise self._fail(
                    f"image {_name(key)} was made with seed {record.seed}, not the one run seed "
                    f"{run_seed} gives (images from another run were mixed in)",
                    fix,
                )
            if record.path != self.run.image_relpath(key[0], key[1], image_format):
                raise self._fail(f"{IMAGES} line {number} points at {record.path!r}", fix)
            found[key] = record
        missing = [k for k in keys if k not in found]
        if missing:
            raise self._fail(f"{len(missing)} of {len(keys)} images are missing, first {_name(missing[0])}", fix)
        records = [found[k] for k in keys]
        self._check_image_files(records, files_required, fix)
        return records

    def _check_image_files(self, records: list[ImageRecord], required: bool, fix: str) -> None:
        """Image bytes must match images.jsonl; a run may lack all images (a submission without them)."""
        paths = [self.run.path / r.path for r in records]
        present = [p.is_file() for p in paths]
        if not any(present) and not required:
            return
        if not all(present):
            first = next(r for r, here in zip(records, present) if not here)
            raise self._fail(f"image {_name((first.prompt_id, first.sample_index))} is missing ({first.path})", fix)
        actual = verified_sha256(paths)
        for record, path in zip(records, paths):
            if actual[path] != record.sha256:
                raise self._fail(
                    f"image {_name((record.prompt_id, record.sample_index))} ({record.path}) does not "
                    f"match its sha256 in {IMAGES}",
                    fix,
                )

    # -- scores --------------------------------------------------------------------------------------
    def samples(
        self,
        keys: list[ImageKey],
        metrics: tuple[str, ...],
        images: dict[ImageKey, ImageRecord],
        prompt_text: dict[str, str],
    ) -> list[Sample]:
        fix = f"run `ts-eval score {self.run.path}` to rebuild its scores (cached scores make this fast)"
        if not self.scored or not self.run.file(SAMPLES).is_file():
            raise UsageError(f"{self.run.path} holds no scores; run `ts-eval score {self.run.path}` first")
        expected = set(keys)
        found: dict[tuple[str, int, str], Sample] = {}
        for number, row in enumerate(self._rows(SAMPLES, fix), start=1):
            try:
                sample = Sample.from_row(row)
            except (KeyError, TypeError, ValueError):
                raise self._fail(
                    f"{SAMPLES} line {number} lacks prompt_id, sample_index, metric or value", fix
                ) from None
            key = (sample.prompt_id, sample.sample_index)
            if key not in expected:
                raise self._fail(
                    f"{SAMPLES} line {number} scores image {_name(key)}, which this run does not have", fix
                )
            if sample.metric not in metrics:
                raise self._fail(
                    f"{SAMPLES} line {number} has metric {sample.metric!r}; the run's scorer writes "
                    f"{', '.join(metrics)}",
                    fix,
                )
            if (*key, sample.metric) in found:
                raise self._fail(f"{SAMPLES} scores image {_name(key)} twice ({sample.metric})", fix)
            value = row.get("value")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise self._fail(f"{SAMPLES} line {number}: value {value!r} is not a finite number", fix)
            if images and sample.image_sha256 != images[key].sha256:
                raise self._fail(
                    f"the score of image {_name(key)} was made for other image bytes ({SAMPLES} line {number})", fix
                )
            # The readable copies of the prompt text and image path must say what prompts.jsonl and
            # images.jsonl say (runs written before rows carried them have neither).
            if "prompt" in row and row["prompt"] != prompt_text[key[0]]:
                raise self._fail(f"{SAMPLES} line {number} gives prompt {key[0]} another text than {PROMPTS}", fix)
            if "path" in row and images and row["path"] != images[key].path:
                raise self._fail(
                    f"{SAMPLES} line {number} gives image {_name(key)} the path {row['path']!r}, "
                    f"not {images[key].path!r} as in {IMAGES}",
                    fix,
                )
            found[(*key, sample.metric)] = sample
        unscored = [k for k in keys if any((*k, m) not in found for m in metrics)]
        if unscored:
            raise UsageError(
                f"{self.run.path}: missing samples: {len(unscored)} of {len(keys)} images have no score "
                f"yet, first {_name(unscored[0])}; run `ts-eval score {self.run.path}` to finish"
            )
        return [found[(*k, m)] for k in keys for m in metrics]

    def detections(self, keys: list[ImageKey], as_input: bool) -> list[dict[str, Any]] | None:
        fix = (
            f"these detections belong to another run, or run `ts-eval score {self.run.path}` to finish it"
            if as_input
            else f"run `ts-eval rescore {self.run.path}` to judge them, or `ts-eval score {self.run.path} "
            "--overwrite` to detect again"
        )
        if not self.run.file(DETECTIONS).is_file():
            if as_input:
                raise UsageError(
                    f"{self.run.file(DETECTIONS)} is missing; score the run first (`ts-eval score {self.run.path}`)"
                )
            return None
        expected, found = set(keys), {}
        for number, row in enumerate(self._rows(DETECTIONS, fix, recorded_bytes=not as_input), start=1):
            try:
                key = (row["prompt_id"], int(row["sample_index"]))
                row["detections"]
            except (KeyError, TypeError, ValueError):
                raise self._fail(
                    f"{DETECTIONS} line {number} lacks prompt_id, sample_index or detections", fix
                ) from None
            if key not in expected:
                raise self._fail(
                    f"{DETECTIONS} line {number} lists image {_name(key)}, which this run does not have", fix
                )
            if key in found:
                raise self._fail(f"{DETECTIONS} line {number} repeats image {_name(key)}", fix)
            found[key] = row
        missing = [k for k in keys if k not in found]
        if missing:
            raise self._fail(
                f"{DETECTIONS} has no detections for image {_name(missing[0])} ({len(missing)} images in all)", fix
            )
        return [found[k] for k in keys]


def _name(key: ImageKey) -> str:
    return f"{key[0]}/{key[1]:04d}"
