"""Rater sheets as CSV and XLSX, and reading filled sheets back (CSV, XLSX, or the HTML page's CSV).

All three carry the same columns; only `study`, `rater`, `item_id` and the aspect columns are read
back, so raters may add notes or reorder rows freely.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ts_eval.errors import UsageError, missing_extra
from ts_eval.human_eval.key import SIDES
from ts_eval.store import write_atomic

ID_COLUMNS = ("study", "rater", "item_id")
_FORMULA_START = ("=", "+", "-", "@")


@dataclass(frozen=True)
class SheetRow:
    """One row a rater sees; image paths are relative to the sheets folder."""

    number: int
    item_id: str
    prompt: str
    left_image: str
    right_image: str


def header(aspects: list[str]) -> list[str]:
    return [*ID_COLUMNS, "item", "prompt", "left_image", "right_image", *aspects, "comment"]


def _cells(study: str, rater: str, aspects: list[str], row: SheetRow) -> list[str | int]:
    return [
        study,
        rater,
        row.item_id,
        row.number,
        row.prompt,
        row.left_image,
        row.right_image,
        *[""] * len(aspects),
        "",
    ]


def write_csv(path: Path, study: str, rater: str, aspects: list[str], rows: list[SheetRow]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header(aspects))
    for row in rows:
        cells = _cells(study, rater, aspects, row)
        # A spreadsheet opening the CSV would run a prompt starting with "=" as a formula.
        if row.prompt.startswith(_FORMULA_START):
            cells[4] = "'" + row.prompt
        writer.writerow(cells)
    # The BOM makes spreadsheet programs read the file as UTF-8 (non-ASCII prompts stay legible).
    write_atomic(path, buffer.getvalue().encode("utf-8-sig"))


def write_xlsx(path: Path, study: str, rater: str, aspects: list[str], rows: list[SheetRow], sheets_dir: Path) -> None:
    try:
        from openpyxl import Workbook
        from openpyxl.drawing.image import Image as XLImage
        from openpyxl.styles import Alignment, Font
        from openpyxl.utils import get_column_letter
        from openpyxl.worksheet.datavalidation import DataValidation
        from openpyxl.worksheet.worksheet import Worksheet
    except ImportError:
        raise missing_extra("openpyxl", "human") from None

    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)  # a new workbook opens on one ordinary worksheet
    sheet.title = "ratings"
    columns = header(aspects)
    sheet.append(columns)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    first_aspect = columns.index(aspects[0]) + 1
    choices = DataValidation(
        type="list",
        formula1='"' + ",".join(SIDES) + '"',
        allow_blank=True,
        showErrorMessage=True,
        error="Answer left, tie or right",
    )
    sheet.add_data_validation(choices)
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(_cells(study, rater, aspects, row), start=1):
            cell = sheet.cell(row=r, column=c, value=value)
            if isinstance(value, str) and value:
                cell.data_type = "s"  # never a formula, whatever the prompt starts with
        sheet.cell(row=r, column=5).alignment = Alignment(wrap_text=True, vertical="top")
        for c, rel in ((6, row.left_image), (7, row.right_image)):
            picture = XLImage(str(sheets_dir / rel))
            scale = 150 / max(picture.width, picture.height)
            picture.width, picture.height = int(picture.width * scale), int(picture.height * scale)
            sheet.add_image(picture, f"{get_column_letter(c)}{r}")
            # cell() of an unmerged cell is a Cell; the stubs' Cell | MergedCell has a read-only hyperlink
            sheet.cell(row=r, column=c).hyperlink = rel  # pyright: ignore[reportAttributeAccessIssue]
        sheet.row_dimensions[r].height = 118
    last = get_column_letter(first_aspect + len(aspects) - 1)
    if rows:
        choices.add(f"{get_column_letter(first_aspect)}2:{last}{len(rows) + 1}")
    for c, width in enumerate([10, 10, 12, 6, 40, 22, 22, *[16] * len(aspects), 30], start=1):
        sheet.column_dimensions[get_column_letter(c)].width = width
    sheet.freeze_panes = "A2"
    help_sheet = book.create_sheet("instructions")
    for line in (
        "For each row, compare the left and the right image for the prompt.",
        f"In each of the columns {', '.join(aspects)} answer one of: {', '.join(SIDES)}.",
        "left = the left image is better, right = the right image is better, tie = no difference.",
        "Do not change the study, rater or item_id columns.",
    ):
        help_sheet.append([line])
    buffer = io.BytesIO()
    book.save(buffer)
    write_atomic(path, buffer.getvalue())


@dataclass(frozen=True)
class SheetTable:
    path: Path
    columns: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (row number in the file, cells by column)


def _pick_delimiter(first_line: str) -> str:
    for delimiter in (",", ";", "\t"):  # spreadsheets in some locales save ';'
        if "item_id" in next(csv.reader([first_line], delimiter=delimiter), []):
            return delimiter
    return ","


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text sheet; save it as CSV (UTF-8) or XLSX") from None
    if "\x00" in text:
        raise UsageError(f"{path}: not a CSV sheet (binary content)")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_pick_delimiter(text.split("\n", 1)[0]))
    try:
        table = list(reader)
    except csv.Error as exc:
        raise UsageError(f"{path}: malformed CSV ({exc})") from None
    if not table:
        raise UsageError(f"{path}: empty sheet")
    columns = [c.strip() for c in table[0]]
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        if len(cells) > len(columns):
            raise UsageError(
                f"{path}: row {number} has {len(cells)} cells but the header has {len(columns)}; "
                "is a comma in a cell unquoted?"
            )
        rows.append((number, {c: cells[i] if i < len(cells) else "" for i, c in enumerate(columns)}))
    return columns, rows


def _read_xlsx(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException
    except ImportError:
        raise missing_extra("openpyxl", "human") from None
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable XLSX workbook ({type(exc).__name__})") from None
    sheet = book["ratings"] if "ratings" in book.sheetnames else book.worksheets[0]
    values = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    book.close()
    if not values:
        raise UsageError(f"{path}: empty sheet")
    columns = [c.strip() for c in values[0]]
    rows = [
        (n, {c: cells[i] if i < len(cells) else "" for i, c in enumerate(columns) if c})
        for n, cells in enumerate(values[1:], start=2)
    ]
    return columns, rows


def read_sheet(path: str | Path, aspects: list[str]) -> SheetTable:
    """A filled sheet's rows; a file that is not a sheet of this study's shape is a usage error."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"sheet {path} not found")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        columns, rows = _read_csv(path)
    elif suffix in (".xlsx", ".xlsm"):
        columns, rows = _read_xlsx(path)
    else:
        raise UsageError(
            f"{path}: unsupported sheet type {suffix or '(none)'}; give the CSV or XLSX sheets "
            "(the HTML page's Download button saves a CSV)"
        )
    missing = [c for c in (*ID_COLUMNS, *aspects) if c not in columns]
    if missing:
        raise UsageError(f"{path}: malformed sheet, missing column(s) {', '.join(missing)}")
    # Spreadsheets keep empty trailing rows; they hold no answer to report.
    rows = [(n, cells) for n, cells in rows if any(v.strip() for v in cells.values())]
    return SheetTable(path, columns, rows)
