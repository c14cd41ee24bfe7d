"""Side-by-side sheets: export, fill as a blind rater would, import, report.

The simulated rater never reads the key: run A's images are red, run B's blue, and the green channel
encodes (prompt, sample), so the rater tells the runs apart by looking at the sheet's image files, as a
person would. Expected counts come from the rater's own answers, not from the code under test.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ts_eval.cli import main
from ts_eval.human_eval.export import ExportOptions, export_study
from ts_eval.human_eval.report import summarize
from ts_eval.human_eval.study import ASPECTS, OUTCOMES, read_study, write_study
from ts_eval.human_eval.unblind import import_sheets
from ts_eval.records import Prompt
from ts_eval.store import IMAGES, PROMPTS, RunDir

for _module in ("krippendorff", "openpyxl", "sklearn"):  # the [human] extra
    pytest.importorskip(_module, reason="needs the [human] extra: pip install -e '.[human]'")

PROMPTS_TEXT = [
    "a red cube on a table",
    'a sign that says "<script>window.__pwned = 1</script>" & more',
    "l'été à Zürich, 東京の夜景 — ünïcödé",
    '=HYPERLINK("http://example.com") a formula-looking prompt',
    "an <img src=x onerror=\"window.__pwned = 2\"> tag, 'single' quotes",
    "five stones by the river",
]
SAMPLES = 2


def make_run(
    path: Path, run: str, prompts: list[str] = PROMPTS_TEXT, samples: int = SAMPLES, task: str = "genai-bench"
) -> Path:
    """A run directory by hand: A red, B blue; green = 20 * prompt index + sample index."""
    rundir = RunDir(path)
    rundir.write_manifest(
        {
            "settings": {
                "task": {"name": task, "version": 1, "variant": "527", "split": "all"},
                "generator": {"name": f"hand-made-{run}"},
                "n_samples": samples,
                "seed": None,
                "image_format": "png",
            }
        }
    )
    rundir.write_rows(PROMPTS, [Prompt(f"{i:05d}", text).to_row() for i, text in enumerate(prompts)])
    rows = []
    for i in range(len(prompts)):
        for k in range(samples):
            colour = (255, 20 * i + k, 0) if run == "a" else (0, 20 * i + k, 255)
            image = Image.new("RGB", (64 + 32 * (run == "b"), 64), colour)  # sizes differ: must not matter
            ImageDraw.Draw(image).ellipse((16, 16, 48, 48) if run == "a" else (24, 12, 72, 52), fill=(250, 250, 250))
            rel, sha = rundir.save_image(image, f"{i:05d}", k)
            rows.append({"prompt_id": f"{i:05d}", "sample_index": k, "seed": 0, "path": rel, "sha256": sha})
    rundir.write_rows(IMAGES, rows)
    return path


def look(path: Path) -> tuple[str, int, int]:
    """What a rater sees in one image: which run (by colour) and which (prompt, sample)."""
    r, g, b = Image.open(path).convert("RGB").getpixel((0, 0))
    return ("a" if r > b else "b"), g // 20, g % 20


def wanted(rater: str, prompt: int, sample: int, aspect: str) -> str:
    """The rater's opinion of A against B: a fixed, uneven mix of win/tie/lose."""
    code = (3 * prompt + sample + 2 * ASPECTS.index(aspect) + int(rater[-2:])) % 5
    return ("win", "win", "tie", "lose", "win")[code]


def answer_for(opinion: str, a_side: str) -> str:
    if opinion == "tie":
        return "tie"
    return a_side if opinion == "win" else ("right" if a_side == "left" else "left")


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def write_csv_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def fill(sheet: Path, *, wrong_gold: bool = False) -> tuple[list[dict[str, str]], Counter, dict]:
    """Answer a CSV sheet as the blind rater; returns the rows, the expected outcome counts per aspect
    (each distinct pair once) and what the rater saw (a_side per row, gold rows)."""
    rows = read_csv(sheet)
    prompt_index = {text: i for i, text in enumerate(PROMPTS_TEXT)}
    expected: Counter = Counter()
    seen = {"a_left": 0, "a_right": 0, "gold": 0, "pairs": set()}
    for row in rows:
        left_run, left_prompt, left_sample = look(sheet.parent / row["left_image"])
        right_run, right_prompt, right_sample = look(sheet.parent / row["right_image"])
        own = prompt_index[row["prompt"].removeprefix("'")]
        if left_prompt != right_prompt:  # a gold item: one image shows another prompt
            seen["gold"] += 1
            good = "left" if left_prompt == own else "right"
            bad = "right" if good == "left" else "left"
            for aspect in ASPECTS:
                row[aspect] = bad if wrong_gold and aspect == "text_alignment" else good
            continue
        assert {left_run, right_run} == {"a", "b"} and left_prompt == own and left_sample == right_sample
        a_side = "left" if left_run == "a" else "right"
        seen["a_" + a_side] += 1
        pair = (own, left_sample)
        for aspect in ASPECTS:
            opinion = wanted(row["rater"], own, left_sample, aspect)
            row[aspect] = answer_for(opinion, a_side)
            if pair not in seen["pairs"]:
                expected[(aspect, opinion)] += 1
        seen["pairs"].add(pair)
    return rows, expected, seen


@pytest.fixture
def runs(tmp_path):
    return make_run(tmp_path / "run-a", "a"), make_run(tmp_path / "run-b", "b")


def export(runs, out: Path, **options) -> Path:
    export_study(runs[0], runs[1], out, ExportOptions(**options))
    return out


def counts(study_dir: Path) -> Counter:
    summary = summarize(read_study(study_dir), resamples=50)
    return Counter({(aspect, o): s[o] for aspect, s in summary["aspects"].items() for o in OUTCOMES if s[o]})


def test_round_trip_csv_recovers_the_raters_answers_with_sides_swapped(runs, tmp_path):
    out = export(runs, tmp_path / "study", raters=3, per_rater=8, seed=7)
    total: Counter = Counter()
    a_left = a_right = 0
    filled = []
    for sheet in sorted((out / "sheets").glob("rater-*.csv")):
        rows, expected, seen = fill(sheet)
        total += expected
        a_left, a_right = a_left + seen["a_left"], a_right + seen["a_right"]
        write_csv_rows(sheet, rows)
        filled.append(sheet)
    assert a_left and a_right, "both side orders must occur, or swapping is not exercised"
    study = import_sheets(filled, out / "key.json")
    write_study(tmp_path / "imported", study)
    assert study.excluded == []
    assert counts(tmp_path / "imported") == total
    assert sum(total.values()) == 3 * 8 * len(ASPECTS)


def test_round_trip_xlsx_gives_the_same_counts_as_csv(runs, tmp_path):
    from openpyxl import load_workbook

    out = export(runs, tmp_path / "study", raters=2, per_rater=12, seed=3, formats=("csv", "xlsx"))
    total: Counter = Counter()
    filled = []
    for sheet in sorted((out / "sheets").glob("rater-*.csv")):
        rows, expected, _ = fill(sheet)
        total += expected
        answers = {row["item_id"]: row for row in rows}
        book = load_workbook(sheet.with_suffix(".xlsx"))
        ws = book["ratings"]
        header = [c.value for c in ws[1]]
        for cells in ws.iter_rows(min_row=2):
            item = cells[header.index("item_id")].value
            for aspect in ASPECTS:
                # Spreadsheet users type freely: capitals and spaces are accepted.
                cells[header.index(aspect)].value = f" {answers[item][aspect].upper()} "
        book.save(sheet.with_suffix(".xlsx"))
        filled.append(sheet.with_suffix(".xlsx"))
    study = import_sheets(filled, out / "key.json")
    write_study(tmp_path / "imported", study)
    assert study.excluded == [] and counts(tmp_path / "imported") == total


def test_bad_rows_are_reported_and_never_counted(runs, tmp_path, capsys):
    out = export(runs, tmp_path / "study", raters=2, per_rater=6, seed=1, formats=("csv",))
    sheet_1, sheet_2 = sorted((out / "sheets").glob("rater-*.csv"))
    rows_1, expected_1, _ = fill(sheet_1)
    rows_2, expected_2, _ = fill(sheet_2)
    # Sheet 1: one empty answer, one out-of-range answer, an unknown item, a row copied with other answers.
    rows_1[0]["visual_flaws"] = ""
    rows_1[1]["text_alignment"] = "maybe"
    rows_1.append({**rows_1[2], "item_id": "i0000000000"})
    rows_1.append({**rows_1[3], "visual_appearance": "tie" if rows_1[3]["visual_appearance"] != "tie" else "left"})
    # Sheet 2: an item of sheet 1 claimed by rater 2, and the same sheet given twice.
    rows_2.append({**rows_1[4], "rater": rows_2[0]["rater"]})
    write_csv_rows(sheet_1, rows_1)
    write_csv_rows(sheet_2, rows_2)
    study = import_sheets([sheet_1, sheet_2, sheet_2], out / "key.json")
    reasons = Counter(e.reason.split(" ")[0] for e in study.excluded)
    # "item ..." = the two disagreeing copies, and the row claimed by rater 2 (in both copies of sheet 2).
    assert reasons == Counter({"no": 1, "answer": 1, "unknown": 1, "item": 2 + 2, "duplicate": 6})
    # Independent count: everything the raters answered, minus the answers of excluded rows.
    lost = Counter()
    prompt_of = {text: i for i, text in enumerate(PROMPTS_TEXT)}
    for row, aspects in ((rows_1[0], ["visual_flaws"]), (rows_1[1], ["text_alignment"]), (rows_1[3], ASPECTS)):
        sample = look(sheet_1.parent / row["left_image"])[2]
        for aspect in aspects:
            lost[(aspect, wanted(row["rater"], prompt_of[row["prompt"].removeprefix("'")], sample, aspect))] += 1
    write_study(tmp_path / "imported", study)
    assert counts(tmp_path / "imported") == expected_1 + expected_2 - lost
    assert len(read_study(tmp_path / "imported").excluded) == len(study.excluded)
    # --strict: the same import still writes the study, then fails the check (exit 1) with the error alone.
    args = ["human-eval", "import", str(sheet_1), str(sheet_2), "--key", str(out / "key.json")]
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "strict"), "--strict"]) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.count("\n") == 1 and printed.err.startswith("ts-eval: error:")
    strict = read_study(tmp_path / "strict").excluded
    assert f"{len(strict)} answers excluded" in printed.err and f"first {strict[0].source}: " in printed.err
    assert counts(tmp_path / "strict") == counts(tmp_path / "imported")


def test_gold_and_repeated_items_check_raters_and_min_gold_drops_a_careless_one(runs, tmp_path):
    out = export(runs, tmp_path / "study", raters=2, per_rater=5, seed=11, gold=2, duplicates=2, formats=("csv",))
    sheets = sorted((out / "sheets").glob("rater-*.csv"))
    careful, careless = fill(sheets[0]), fill(sheets[1], wrong_gold=True)
    assert careful[2]["gold"] == 2 and len(careful[0]) == 5 + 2 + 2
    write_csv_rows(sheets[0], careful[0])
    write_csv_rows(sheets[1], careless[0])
    study = import_sheets(sheets, out / "key.json")
    checks = study.checks["raters"]
    assert checks["rater-01"]["gold"] == {"n": 2, "correct": 2}
    assert checks["rater-02"]["gold"] == {"n": 2, "correct": 0}
    assert checks["rater-01"]["repeats"] == {"n": 2 * len(ASPECTS), "consistent": 2 * len(ASPECTS)}
    write_study(tmp_path / "all", study)
    assert counts(tmp_path / "all") == careful[1] + careless[1]  # gold and repeats are not counted
    strict = import_sheets(sheets, out / "key.json", min_gold=0.5)
    assert [e.rater for e in strict.excluded] == ["rater-02"]
    write_study(tmp_path / "strict", strict)
    assert counts(tmp_path / "strict") == careful[1]


def test_a_rater_who_ignores_the_side_swap_of_a_repeat_is_caught(runs, tmp_path):
    out = export(runs, tmp_path / "study", raters=1, per_rater=4, seed=5, duplicates=1, formats=("csv",))
    sheet = next((out / "sheets").glob("rater-*.csv"))
    rows, _, _ = fill(sheet)
    shown = Counter((r["prompt"], look(sheet.parent / r["left_image"])[2]) for r in rows)
    first, second = [r for r in rows if shown[(r["prompt"], look(sheet.parent / r["left_image"])[2])] == 2]
    for aspect in ASPECTS:  # the same side again, although the images changed places
        second[aspect] = first[aspect]
    write_csv_rows(sheet, rows)
    repeats = import_sheets([sheet], out / "key.json").checks["raters"]["rater-01"]["repeats"]
    flipped = sum(first[a] != "tie" for a in ASPECTS)
    assert flipped, "pick a seed whose repeated item has a non-tie answer"
    assert repeats == {"n": len(ASPECTS), "consistent": len(ASPECTS) - flipped}


def test_assignment_is_balanced_seeded_and_keeps_the_key_apart(runs, tmp_path):
    out = export(runs, tmp_path / "s1", raters=4, per_rater=9, seed=2)
    n_pairs = len(PROMPTS_TEXT) * SAMPLES
    key = json.loads((out / "key.json").read_text())
    seen = Counter((i["prompt_id"], i["sample_index"]) for i in key["items"] if i["kind"] == "pair")
    assert len(seen) == n_pairs and set(seen.values()) == {3}  # 4 raters * 9 / 12 pairs
    for rater in key["raters"]:
        mine = [(i["prompt_id"], i["sample_index"]) for i in key["items"] if i["rater"] == rater]
        assert len(mine) == len(set(mine)) == 9
    sides = Counter(i["left"] for i in key["items"])
    assert sides["a"] and sides["b"]
    # The same seed gives byte-identical sheets and key; another seed does not.
    again = export(runs, tmp_path / "s2", raters=4, per_rater=9, seed=2)
    other = export(runs, tmp_path / "s3", raters=4, per_rater=9, seed=3)
    for name in ("key.json", "sheets/rater-01.csv"):
        assert (out / name).read_bytes().replace(b"/s1/", b"/s2/") == (again / name).read_bytes()
    # The page is the same but for its script nonce, which is random per export.
    pages = [(folder / "sheets/rater-02.html").read_text(encoding="utf-8") for folder in (out, again)]
    nonces = [
        re.findall(r"nonce-([A-Za-z0-9_-]+)'", page) + re.findall(r'nonce="([A-Za-z0-9_-]+)"', page) for page in pages
    ]
    assert all(len(found) == 2 and found[0] == found[1] and len(found[0]) >= 22 for found in nonces)
    assert nonces[0][0] != nonces[1][0], "a nonce anyone can recompute from the study id protects nothing"
    assert pages[0].replace(nonces[0][0], "N") == pages[1].replace(nonces[1][0], "N")
    assert (out / "sheets/rater-01.csv").read_bytes() != (other / "sheets/rater-01.csv").read_bytes()
    # Nothing handed to raters names a run, a prompt id or a side.
    for path in (out / "sheets").rglob("*"):
        if path.suffix in (".csv", ".html"):
            text = path.read_text(encoding="utf-8-sig")
            assert "run-a" not in text and "run-b" not in text and "00001" not in text and '"left": "a"' not in text
    assert not (out / "sheets" / "key.json").exists()


class _PageText(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.prompts, self._in_prompt, self.imgs = [], [], False, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts.append(attrs)
        if tag == "img":
            self.imgs.append(attrs)
        if tag == "p" and attrs.get("class") == "prompt":
            self._in_prompt = True
            self.prompts.append("")

    def handle_endtag(self, tag):
        if tag == "p":
            self._in_prompt = False

    def handle_data(self, data):
        if self._in_prompt:
            self.prompts[-1] += data


def test_prompts_with_markup_quotes_and_non_ascii_render_as_text(runs, tmp_path):
    out = export(runs, tmp_path / "study", raters=1, seed=0, formats=("html", "csv", "xlsx"))
    page = (out / "sheets" / "rater-01.html").read_text(encoding="utf-8")
    parsed = _PageText()
    parsed.feed(page)
    # Exactly our two script elements: the JSON data block and the nonce'd program.
    assert [s.get("type", "") for s in parsed.scripts] == ["application/json", ""]
    assert len(parsed.imgs) == 2 * len(PROMPTS_TEXT) * SAMPLES and all("onerror" not in i for i in parsed.imgs)
    assert sorted(set(parsed.prompts)) == sorted(PROMPTS_TEXT)
    assert "東京" in page and "&lt;script&gt;" in page and "<script>window" not in page
    csv_rows = read_csv(out / "sheets" / "rater-01.csv")
    assert {r["prompt"] for r in csv_rows} == {("'" + p) if p.startswith("=") else p for p in PROMPTS_TEXT}
    from openpyxl import load_workbook

    ws = load_workbook(out / "sheets" / "rater-01.xlsx")["ratings"]
    cells = [ws.cell(row=r, column=5) for r in range(2, ws.max_row + 1)]
    assert {c.value for c in cells} == set(PROMPTS_TEXT) and {c.data_type for c in cells} == {"s"}


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_malformed_sheets_and_wrong_keys_fail_in_one_line_and_overwrite_nothing(runs, tmp_path, capsys):
    out = export(runs, tmp_path / "study", raters=1, per_rater=4, seed=0, formats=("csv",))
    other = export(runs, tmp_path / "other", raters=1, per_rater=4, seed=1, formats=("csv",))
    sheet = out / "sheets" / "rater-01.csv"
    rows, _, _ = fill(sheet)
    write_csv_rows(sheet, rows)
    imported = tmp_path / "imported"
    assert main(["human-eval", "import", str(sheet), "--key", str(out / "key.json"), "--out", str(imported)]) == 0
    before = _snapshot(imported)
    capsys.readouterr()

    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    no_column = tmp_path / "no_column.csv"
    write_csv_rows(no_column, [{k: v for k, v in r.items() if k != "visual_flaws"} for r in rows])
    extra_cells = tmp_path / "extra.csv"
    extra_cells.write_text(sheet.read_text(encoding="utf-8") + "a,b,c,d,e,f,g,h,i,j,k,l,m,n\n", encoding="utf-8")
    not_a_key = tmp_path / "not_a_key.json"
    not_a_key.write_text('{"format": "something-else"}')
    broken_key = tmp_path / "broken_key.json"
    broken_key.write_text("{not json")
    fake_xlsx = tmp_path / "fake.xlsx"
    fake_xlsx.write_text("not a zip")
    cases = [
        ([str(garbage)], out / "key.json", "not a UTF-8 text sheet"),
        ([str(no_column)], out / "key.json", "missing column(s) visual_flaws"),
        ([str(extra_cells)], out / "key.json", "cells but the header has"),
        ([str(fake_xlsx)], out / "key.json", "not a readable XLSX"),
        ([str(tmp_path / "nope.csv")], out / "key.json", "not found"),
        ([str(sheet)], other / "key.json", "is the key of study"),  # a real key, of another study
        ([str(sheet)], not_a_key, "not a ts-eval/human-key@1"),
        ([str(sheet)], broken_key, "malformed JSON"),
        ([str(sheet), str(garbage)], out / "key.json", "not a UTF-8"),  # one bad sheet stops the whole import
    ]
    for sheets, key, message in cases:
        code = main(["human-eval", "import", *sheets, "--key", str(key), "--out", str(imported)])
        err = capsys.readouterr().err
        assert code == 2, (sheets, key)
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
        assert _snapshot(imported) == before


def test_export_refuses_to_replace_a_study_and_rejects_bad_options(runs, tmp_path, capsys):
    out = export(runs, tmp_path / "study", raters=1, per_rater=2, seed=0, formats=("csv",))
    before = _snapshot(out)
    bad = [
        [],  # the folder already holds a key
        ["--per-rater", "99"],
        ["--raters", "0"],
        ["--aspects", "Text Alignment"],
        ["--format", "pdf"],
        ["--gold", "1", "--aspects", "visual_flaws"],
    ]
    for extra in bad:
        target = out if not extra else tmp_path / "fresh"
        code = main(["human-eval", "export", str(runs[0]), str(runs[1]), "--out", str(target), *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, (extra, err)
        assert not (tmp_path / "fresh").exists()
    assert _snapshot(out) == before
    mismatched = make_run(tmp_path / "run-c", "b", prompts=["something else"] * len(PROMPTS_TEXT))
    assert main(["human-eval", "export", str(runs[0]), str(mismatched), "--out", str(tmp_path / "x")]) == 2
    assert "differs between" in capsys.readouterr().err
    other_task = make_run(tmp_path / "run-d", "b", task="geneval")
    assert main(["human-eval", "export", str(runs[0]), str(other_task), "--out", str(tmp_path / "x")]) == 2
    assert (
        main(
            [
                "human-eval",
                "export",
                str(runs[0]),
                str(runs[1]),
                "--out",
                str(out),
                "--overwrite",
                "--raters",
                "2",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (out / "sheets").glob("*.csv")) == ["rater-01.csv", "rater-02.csv"]


def test_unpaired_images_are_left_out_and_counted(tmp_path, capsys):
    a = make_run(tmp_path / "a", "a", samples=2)
    b = make_run(tmp_path / "b", "b", samples=1)
    key = export_study(a, b, tmp_path / "s", ExportOptions(raters=1, formats=("csv",)))
    assert len(key.items) == len(PROMPTS_TEXT)
    assert f"{len(PROMPTS_TEXT)} images had no partner" in capsys.readouterr().err


def test_embedded_images_make_one_self_contained_file(runs, tmp_path):
    out = export(runs, tmp_path / "study", raters=1, per_rater=2, seed=0, formats=("html",), embed_images=True)
    page = (out / "sheets" / "rater-01.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 4 and 'src="images/' not in page
    assert "http://" not in page.replace('"http://example.com"', "").replace("&quot;http://example.com&quot;", "")


def test_report_numbers_are_integers_and_agreement_is_computed(runs, tmp_path, capsys):
    out = export(runs, tmp_path / "study", raters=3, seed=4, formats=("csv",))  # every rater sees every pair
    for sheet in (out / "sheets").glob("rater-*.csv"):
        rows, _, _ = fill(sheet)
        for row in rows:  # all raters agree: A always wins alignment, B always has fewer flaws
            a_side = "left" if look(sheet.parent / row["left_image"])[0] == "a" else "right"
            row["text_alignment"] = a_side
            row["visual_flaws"] = "right" if a_side == "left" else "left"
        write_csv_rows(sheet, rows)
    assert (
        main(
            [
                "human-eval",
                "import",
                *map(str, (out / "sheets").glob("rater-*.csv")),
                "--key",
                str(out / "key.json"),
                "--out",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["human-eval", "report", str(tmp_path / "d"), "--format", "json", "--resamples", "200"]) == 0
    report = json.loads(capsys.readouterr().out)
    pairs = len(PROMPTS_TEXT) * SAMPLES
    ta, vf = report["aspects"]["text_alignment"], report["aspects"]["visual_flaws"]
    assert (ta["win"], ta["tie"], ta["lose"], ta["n"]) == (3 * pairs, 0, 0, 3 * pairs)
    assert (vf["win"], vf["lose"]) == (0, 3 * pairs) and all(type(ta[o]) is int for o in (*OUTCOMES, "n"))
    assert ta["ci95"]["win"] == [1.0, 1.0] and ta["prompts"] == len(PROMPTS_TEXT)
    assert report["aspects"]["visual_appearance"]["agreement"]["units"] == pairs
    va = report["aspects"]["visual_appearance"]
    assert va["win"] + va["tie"] + va["lose"] == va["n"] == 3 * pairs
    assert ta["agreement"]["value"] is None and "same" in ta["agreement"]["note"]  # no variation: undefined


def test_cli_round_trip_on_two_dummy_runs(genai_527, tmp_path, capsys):
    """The acceptance flow on real run directories: export, fill, import, report, all through the CLI.
    The rater recognises run A's images by their checksums in A's images.jsonl, not by the key."""
    from ts_eval import run

    for name, seed in (("dummy-a", 0), ("dummy-b", 1)):
        run(
            "genai-bench",
            variant="527",
            data=str(genai_527),
            model="dummy",
            scorer="dummy",
            limit=5,
            seed=seed,
            out=str(tmp_path / name),
            progress=False,
        )
    a_images = {row["sha256"] for row in RunDir(tmp_path / "dummy-a").read_rows(IMAGES)}
    prompt_ids = {row["prompt"]: row["prompt_id"] for row in RunDir(tmp_path / "dummy-a").read_rows(PROMPTS)}
    out = tmp_path / "study"
    assert (
        main(
            [
                "human-eval",
                "export",
                str(tmp_path / "dummy-a"),
                str(tmp_path / "dummy-b"),
                "--out",
                str(out),
                "--raters",
                "2",
                "--per-rater",
                "4",
                "--seed",
                "3",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    expected: Counter = Counter()
    swapped = Counter()
    sheets = sorted((out / "sheets").glob("rater-*.csv"))
    for sheet in sheets:
        rows = read_csv(sheet)
        for row in rows:
            left_sha = hashlib.sha256((sheet.parent / row["left_image"]).read_bytes()).hexdigest()
            a_side = "left" if left_sha in a_images else "right"
            swapped[a_side] += 1
            for aspect in ASPECTS:
                opinion = wanted(row["rater"], int(prompt_ids[row["prompt"]]), 0, aspect)
                row[aspect] = answer_for(opinion, a_side)
                expected[(aspect, opinion)] += 1
        write_csv_rows(sheet, rows)
    assert swapped["left"] and swapped["right"]
    assert main(["human-eval", "import", *map(str, sheets), "--key", str(out / "key.json"), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["human-eval", "report", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["a"], report["b"]) == ("dummy-a", "dummy-b") and report["excluded"] == []
    got = Counter({(aspect, o): s[o] for aspect, s in report["aspects"].items() for o in OUTCOMES if s[o]})
    assert got == expected


def _human_eval_imports() -> dict[str, set[str]]:
    """Module -> the ts_eval.human_eval modules it imports anywhere (top level, functions, TYPE_CHECKING)."""
    import ast

    package = Path(__file__).resolve().parent.parent / "ts_eval" / "human_eval"
    names = {p.stem for p in package.glob("*.py")}
    graph = {}
    for path in package.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "ts_eval.human_eval":
                found |= {alias.name for alias in node.names if alias.name in names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ts_eval.human_eval."):
                found.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("ts_eval.human_eval.")}
        graph[path.stem] = found - {path.stem}
    return graph


def test_human_eval_modules_import_no_circle():
    graph = _human_eval_imports()
    assert "sheets" in graph["export"] and "sheets" in graph["html_page"]  # the scan sees real imports

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    circles = sorted(m for m in graph if reaches(m, m, {m}))
    assert circles == [], f"modules on an import circle: {circles}"
