"""Your own prompts: `ts-eval run prompts --prompts SOURCE`, scored like GenAI-Bench (VQAScore) or with CLIPScore.

SOURCE is one of:

    FILE.txt                                   one prompt a line; ids 00001, 00002, ... by line
    FILE.csv | FILE.tsv | FILE.jsonl           a `prompt` column, an optional `id` (or `prompt_id`) column, and
                                               tag columns (every other column, or those `--prompt-tags` names)
    DIR[:SPLIT]                                a dataset saved with `datasets`' save_to_disk, or a folder of data
                                               files `datasets` reads (e.g. a dataset repository fetched with
                                               `hf download`); works offline
    hf://ORG/NAME[@REVISION][:SPLIT][#COLUMN]  a Hugging Face dataset, loaded with `datasets` (the [data] extra)

`#COLUMN` after any table source names the prompt column (`drawbench.csv#Prompts`). Each non-empty value of a tag
column is a tag (a list value gives several; equal values in two columns are one tag); each tag is a group of the
summary (the mean over its prompts) and `all` is every prompt. A prompt's score is the mean over its images, as in
GenAI-Bench. The run records the file's sha256 (a dataset's name, revision, split and fingerprint), the prompt and
tag columns, and the sha256 of the prompt set as loaded, so equal records mean equal prompts.

There is no official recipe for a prompt set of your own: every run is labelled `custom prompts (no official recipe)`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts_eval import hub
from ts_eval.errors import UsageError
from ts_eval.options import DEFAULT_RESAMPLES
from ts_eval.records import Prompt
from ts_eval.store.files import read_jsonl, sha256_file
from ts_eval.tasks.data import DataFiles

HUB = "hf://"
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl")
PROMPT_COLUMN = "prompt"
ID_COLUMNS = ("id", "prompt_id")
ALL = "all"  # the group of every prompt: no tag may take its name
# A prompt id names a folder of the run directory (images/<prompt_id>/): one safe path component.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class Source:
    """A parsed `--prompts SOURCE`."""

    text: str  # as given
    kind: str  # "file", "disk" (a local dataset folder) or "hub"
    location: str  # a path, or ORG/NAME on the Hub
    revision: str | None = None
    split: str | None = None
    column: str | None = None  # the prompt column; None: `prompt`


@dataclass(frozen=True)
class Table:
    """Rows as read, before any check: columns in order, and how to name row i in a message."""

    rows: list[dict[str, Any]]
    columns: list[str]
    where: Callable[[int], str]  # 0-based row index -> "line 3" / "row 3"
    name: str  # the source as messages name it


def parse_source(text: str) -> Source:
    if not isinstance(text, str) or not text.strip():
        raise UsageError(
            "--prompts needs a SOURCE: a .txt, .csv, .tsv or .jsonl file, a dataset folder, or "
            "hf://ORG/NAME[@REVISION][:SPLIT][#COLUMN]"
        )
    if text.startswith(HUB):
        rest, _, column = text[len(HUB) :].partition("#")
        rest, _, split = rest.partition(":")
        name, _, revision = rest.partition("@")
        if not _HUB_NAME.fullmatch(name):
            raise UsageError(f"--prompts {text}: expected hf://ORG/NAME[@REVISION][:SPLIT][#COLUMN]")
        return Source(text, "hub", name, revision or None, split or None, column or None)
    path, column, split = text, None, None
    if not Path(path).exists() and "#" in path:
        path, _, column = path.rpartition("#")
    if not Path(path).exists() and ":" in path:
        candidate, _, split = path.rpartition(":")
        if Path(candidate).is_dir():
            path = candidate
        else:
            split = None
    if not Path(path).exists():
        raise UsageError(f"--prompts {text}: no such file or folder")
    if Path(path).is_dir():
        return Source(text, "disk", path, None, split or None, column or None)
    if Path(path).suffix.lower() not in SUFFIXES:
        raise UsageError(f"--prompts {path}: unknown kind of file; use .txt (one prompt a line), .csv, .tsv or .jsonl")
    if split:
        raise UsageError(f"--prompts {text}: a file has no splits; drop ':{split}'")
    return Source(text, "file", path, column=column or None)


# -- reading ---------------------------------------------------------------------------------------


def _read_file(source: Source) -> Table:
    path = Path(source.location)
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if suffix == ".txt":
        if source.column:
            raise UsageError(
                f"--prompts {source.text}: a .txt file has one prompt a line and no columns; drop '#{source.column}'"
            )
        lines = text.rstrip("\n\r\t ").splitlines()  # blank lines at the end of a file are not prompts
        return Table([{PROMPT_COLUMN: line} for line in lines], [PROMPT_COLUMN], lambda i: f"line {i + 1}", str(path))
    if suffix == ".jsonl":
        rows = read_jsonl(path)
        bad = next((n for n, row in enumerate(rows, start=1) if not isinstance(row, dict)), None)
        if bad:
            raise UsageError(f"{path}: line {bad} is not a JSON object with a 'prompt' field")
        columns = list(dict.fromkeys(key for row in rows for key in row))
        return Table(rows, columns, lambda i: f"line {i + 1}", str(path))
    import csv

    reader = csv.DictReader(text.splitlines(), delimiter=TABLE_SUFFIXES[suffix], restkey="\x00extra")
    rows = list(reader)
    extra = next((n for n, row in enumerate(rows, start=2) if "\x00extra" in row), None)
    if extra:
        raise UsageError(f"{path}: line {extra} has more fields than the header line")
    return Table(rows, list(reader.fieldnames or []), lambda i: f"line {i + 2}", str(path))


def _import_datasets():
    from ts_eval.registry import Requirement

    Requirement("data", ("datasets",)).check()  # one line naming the extra when it is missing
    import datasets

    hub.quiet_third_party_logs()  # datasets sets up its own log handler on import
    return datasets


@contextmanager
def _offline(datasets) -> Iterator[None]:
    """No network call from `datasets` or huggingface_hub: only their local caches answer."""
    import huggingface_hub.constants as hub_constants

    saved = datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _load_dataset(source: Source):
    """A `datasets` Dataset or DatasetDict for a dataset folder or the Hub (offline-first)."""
    datasets = _import_datasets()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    if source.kind == "disk":
        folder = Path(source.location)
        try:
            if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
                return datasets.load_from_disk(str(folder))
            with _offline(datasets):  # a folder of data files (parquet, csv, json): read locally
                return datasets.load_dataset(str(folder))
        except Exception as exc:  # datasets fails in many ways on a folder it cannot read; say so in one line
            raise UsageError(
                f"--prompts {folder}: not a dataset folder `datasets` can read ({_one_line(exc)})"
            ) from None
    revision = source.revision or "main"
    fetch = (
        f"fetch it with `{hub.HubRepo(source.location, revision, 'dataset').fetch_command()}` and pass "
        f"--prompts DIR{':' + source.split if source.split else ''}{'#' + source.column if source.column else ''}"
    )
    reason = hub.unreachable_reason()
    try:
        if reason:
            with _offline(datasets):
                return datasets.load_dataset(source.location, revision=revision)
        return datasets.load_dataset(source.location, revision=revision)
    except Exception as exc:  # network, missing repository, a script dataset: one line and the way out
        why = (
            f"the Hub cannot be used ({reason}) and it is not in the local datasets cache" if reason else _one_line(exc)
        )
        raise UsageError(f"--prompts {source.text}: cannot load the dataset: {why}; {fetch}") from None


def _pick_split(found: Any, source: Source) -> tuple[Any, str | None]:
    """One split of a DatasetDict (the only one, or the one named); a plain Dataset has none to pick."""
    if not hasattr(found, "keys"):  # a Dataset
        if source.split:
            raise UsageError(f"--prompts {source.text}: the dataset has no splits; drop ':{source.split}'")
        return found, None
    splits = list(found.keys())
    if source.split is None:
        if len(splits) == 1:
            return found[splits[0]], splits[0]
        column = f"#{source.column}" if source.column else ""
        raise UsageError(
            f"--prompts {source.text}: the dataset has splits {', '.join(splits)}; choose one "
            f"with :SPLIT (e.g. {source.text.split('#')[0]}:{splits[0]}{column})"
        )
    if source.split not in splits:
        raise UsageError(f"--prompts {source.text}: unknown split '{source.split}'; choose one of: {', '.join(splits)}")
    return found[source.split], source.split


def _read_dataset(source: Source) -> tuple[Table, dict[str, Any]]:
    dataset, split = _pick_split(_load_dataset(source), source)
    where = f"{source.location}" + (f" ({split})" if split else "")
    table = Table(dataset.to_list(), list(dataset.column_names), lambda i: f"row {i + 1}", where)
    record: dict[str, Any]
    if source.kind == "hub":
        record = {"hf_dataset": source.location, "revision": source.revision or "main"}
    else:
        record = {"dataset_folder": Path(source.location).name}
    record.update(split=split, fingerprint=getattr(dataset, "_fingerprint", None))
    return table, record


# -- prompts from rows -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def build_prompts(table: Table, prompt_column: str, tag_columns: list[str] | None) -> tuple[list[Prompt], list[str]]:
    """Prompts from rows, or one line naming the first bad row; also the tag columns used."""
    name = table.name
    if not table.rows:
        raise UsageError(f"{name}: holds no prompts")
    if prompt_column not in table.columns:
        raise UsageError(
            f"{name}: no column '{prompt_column}' (columns: {', '.join(table.columns) or 'none'}); "
            f"name the prompt column with --prompts SOURCE#COLUMN"
        )
    id_column = next((c for c in ID_COLUMNS if c in table.columns and c != prompt_column), None)
    others = [c for c in table.columns if c not in (prompt_column, id_column)]
    if tag_columns is None:
        tag_columns = others
    unknown = [c for c in tag_columns if c not in others]
    if unknown:
        raise UsageError(
            f"--prompt-tags: {name} has no tag column '{unknown[0]}'; choose from: {', '.join(others) or 'none'}"
        )
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(table.rows):
        text = row.get(prompt_column)
        if not isinstance(text, str):
            raise UsageError(f"{name}: {table.where(i)}: the prompt is {_text(text)}, not text")
        if not text.strip():
            raise UsageError(f"{name}: {table.where(i)}: the prompt is blank; every row needs one")
        prompt_id = _prompt_id(row.get(id_column) if id_column else None, i, name, table.where(i), id_column)
        if prompt_id in seen:
            raise UsageError(
                f"{name}: {table.where(i)} repeats id {prompt_id!r} of {table.where(seen[prompt_id])}; "
                "ids must be unique"
            )
        seen[prompt_id] = i
        by_column = {column: _tags(row, column, name, table.where(i)) for column in tag_columns}
        tags = tuple(dict.fromkeys(tag for column_tags in by_column.values() for tag in column_tags))
        # metadata keeps which column each tag came from, so the table groups them column by column
        prompts.append(
            Prompt(
                prompt_id=prompt_id,
                prompt=text,
                tags=tags,
                metadata={column: list(found) for column, found in by_column.items() if found},
            )
        )
    return prompts, list(tag_columns)


def _prompt_id(value: Any, index: int, name: str, where: str, column: str | None) -> str:
    if column is None:
        return f"{index + 1:05d}"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UsageError(f"{name}: {where}: {column} is {_text(value)}; ids are text or whole numbers")
    text = str(value).strip()
    if not SAFE_ID.fullmatch(text):
        raise UsageError(
            f"{name}: {where}: {column} {text!r} is not a usable id (letters, digits, '.', '_' and '-', "
            "starting with a letter or digit; it names the prompt's image folder)"
        )
    return text


def _tags(row: dict[str, Any], column: str, name: str, where: str) -> tuple[str, ...]:
    """The tags one column gives a row: its text, or each text of a list; empty values give none."""
    tags: list[str] = []
    value = row.get(column)
    for item in value if isinstance(value, list) else [value]:
        if item is None or (isinstance(item, str) and not item.strip()):
            continue
        if not isinstance(item, str):
            raise UsageError(
                f"{name}: {where}: tag column '{column}' holds {_text(item)}; tag columns hold "
                "text or lists of text (choose them with --prompt-tags)"
            )
        tag = item.strip()
        if tag == ALL:
            raise UsageError(f"{name}: {where}: '{ALL}' cannot be a tag (it is the group of every prompt)")
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def tag_order(prompts: list[Prompt]) -> list[str]:
    """Every tag once: column by column (the columns in their order), each in order of first appearance."""
    columns = list(dict.fromkeys(column for p in prompts for column in p.metadata))
    ordered = [tag for column in columns for p in prompts for tag in p.metadata.get(column, [])]
    return list(dict.fromkeys(ordered + [tag for p in prompts for tag in p.tags]))


def prompts_sha256(prompts: list[Prompt]) -> str:
    """The prompt set as loaded (ids, text, tags by column): equal sha256, equal prompts, whatever the format."""
    text = "".join(
        json.dumps([p.prompt_id, p.prompt, p.metadata], ensure_ascii=False, sort_keys=True) + "\n" for p in prompts
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the task's interface --------------------------------------------------------------------------


def load_source(text: str | None, tag_columns: list[str] | None) -> tuple[DataFiles, list[Prompt]]:
    """The prompts of `--prompts SOURCE` and what the manifest records about where they came from."""
    if text is None:
        raise UsageError(
            "the prompts task needs --prompts SOURCE (a .txt, .csv, .tsv or .jsonl file, a dataset "
            "folder, or hf://ORG/NAME[@REVISION][:SPLIT][#COLUMN])"
        )
    source = parse_source(text)
    if source.kind == "file":
        path = Path(source.location)
        table = _read_file(source)
        record: dict[str, Any] = {"file": path.name, "sha256": {path.name: sha256_file(path)}}
        paths = {path.name: path}
    else:
        table, record = _read_dataset(source)
        paths = {}
    prompt_column = source.column or PROMPT_COLUMN
    prompts, used = build_prompts(table, prompt_column, tag_columns)
    record.update(prompt_column=prompt_column, tag_columns=used, prompts_sha256=prompts_sha256(prompts))
    origin = str(Path(source.location).resolve()) if source.kind != "hub" else source.text
    return DataFiles(paths=paths, origin=origin, source=record), prompts


def load_prompts(files: DataFiles) -> list[Prompt]:
    raise UsageError("the prompts task reads --prompts SOURCE, not task data files")


def summarize(
    spec, prompts: list[Prompt], samples, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """Per tag (in order of first appearance) and `all`: mean over prompts, number of prompts, bootstrap 95% CI."""
    import numpy as np

    from ts_eval.stats import bootstrap_ci
    from ts_eval.tasks.genai_bench import prompt_scores

    scores = prompt_scores(samples, spec.metric)
    tags = tag_order(prompts)
    members = {tag: [p.prompt_id for p in prompts if tag in p.tags] for tag in tags}
    members[ALL] = [p.prompt_id for p in prompts]
    groups = {}
    for group, ids in members.items():
        values = scores.reindex(ids).dropna().to_numpy(dtype=np.float64)
        if len(values) == 0:
            continue
        lo, hi = bootstrap_ci(values, resamples=resamples, seed=seed)
        groups[group] = {"mean": float(values.mean()), "n": len(values), "ci95": [lo, hi]}
    return {"metric": spec.metric, "groups": groups}


def group_members(prompts: list[Prompt], group: str) -> list[str]:
    return [p.prompt_id for p in prompts if group == ALL or group in p.tags]
