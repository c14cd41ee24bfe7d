"""The rater's page: one self-contained HTML file (no network), radio buttons per aspect, answers kept in
the browser and downloaded as the CSV that `human-eval import` reads.

Everything from outside (prompts, names) goes through `html.escape` or, inside the script, JSON with
`<`, `>` and `&` escaped; a random nonce per page (`secrets`) in the Content-Security-Policy blocks any other
script: a nonce derived from the study id could be computed by anyone who knows it.
"""

from __future__ import annotations

import base64
import json
import secrets
from html import escape
from pathlib import Path

from ts_eval.human_eval.sheets import ID_COLUMNS, SheetRow

QUESTIONS = {
    "text_alignment": ("Text alignment", "Which image matches the prompt better?"),
    "visual_flaws": ("Visual flaws", "Which image has fewer flaws (distorted faces, hands, objects, artefacts)?"),
    "visual_appearance": ("Visual appearance", "Which image looks better (detail, lighting, composition)?"),
}
CHOICES = (("left", "Left wins", "1"), ("tie", "Tie", "2"), ("right", "Right wins", "3"))

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1rem; color: #222; }
header { border-bottom: 1px solid #ccc; margin-bottom: 1rem; }
.item { border: 1px solid #ccc; border-radius: 6px; padding: 0.8rem 1rem; margin: 1rem 0; }
.item.done { border-color: #3a7; }
.prompt { font-size: 1.1rem; background: #f4f4f4; padding: 0.5rem; white-space: pre-wrap;
          overflow-wrap: anywhere; }  /* a long unbroken prompt wraps instead of running off the page */
.pair { display: flex; gap: 1rem; }
figure { flex: 1; margin: 0; text-align: center; }
/* One fixed box for both sides: images and questions fit one screen, whatever the sizes. */
figure img { width: 100%; height: min(36vh, 400px); object-fit: contain; background: #f7f7f7; border: 1px solid #ddd; }
fieldset { border: 1px solid #ddd; margin: 0.5rem 0; }
fieldset:focus-within { outline: 3px solid #48c; }
label { display: inline-block; padding: 0.3rem 0.8rem; margin-right: 0.5rem; cursor: pointer; }
input[type=radio]:focus-visible + span { outline: 2px solid #48c; }
kbd { border: 1px solid #aaa; border-radius: 3px; padding: 0 0.3rem; font-size: 0.8rem; }
#bar { position: sticky; bottom: 0; background: #fff; border-top: 1px solid #ccc; padding: 0.6rem 0; }
button { font-size: 1rem; padding: 0.4rem 1rem; }
"""

_SCRIPT = """
(function () {
  const DATA = JSON.parse(document.getElementById("sheet-data").textContent);
  const form = document.getElementById("sheet");
  const store = "ts-eval-human:" + DATA.study + ":" + DATA.rater;
  const fieldsets = Array.from(form.querySelectorAll("fieldset"));
  function answer(item, aspect) {
    const checked = form.querySelector('input[name="' + item + ":" + aspect + '"]:checked');
    return checked ? checked.value : "";
  }
  function cell(value) {
    value = String(value);
    return /[",\\r\\n]/.test(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
  }
  function answersCsv() {
    const lines = [DATA.columns.concat(DATA.aspects).map(cell).join(",")];
    for (const item of DATA.items) {
      const row = [DATA.study, DATA.rater, item].concat(DATA.aspects.map(a => answer(item, a)));
      lines.push(row.map(cell).join(","));
    }
    return lines.join("\\r\\n") + "\\r\\n";
  }
  function update() {
    let done = 0, saved = {};
    for (const item of DATA.items) {
      const values = DATA.aspects.map(a => answer(item, a));
      values.forEach((v, i) => { if (v) saved[item + ":" + DATA.aspects[i]] = v; });
      const complete = values.every(v => v);
      document.getElementById("item-" + item).classList.toggle("done", complete);
      if (complete) done += 1;
    }
    document.getElementById("progress").textContent = done + " of " + DATA.items.length + " items answered";
    try { localStorage.setItem(store, JSON.stringify(saved)); } catch (e) { /* private mode: no autosave */ }
  }
  try {
    const saved = JSON.parse(localStorage.getItem(store) || "{}");
    for (const [name, value] of Object.entries(saved)) {
      const input = form.querySelector('input[name="' + name + '"][value="' + value + '"]');
      if (input) input.checked = true;
    }
  } catch (e) { /* nothing saved yet */ }
  form.addEventListener("change", update);
  // 1/2/3 answer left/tie/right for the question in focus, then move to the next question.
  form.addEventListener("keydown", function (event) {
    const index = ["1", "2", "3"].indexOf(event.key);
    const fieldset = event.target.closest ? event.target.closest("fieldset") : null;
    if (index < 0 || !fieldset) return;
    event.preventDefault();
    const input = fieldset.querySelectorAll("input[type=radio]")[index];
    input.checked = true;
    update();
    const next = fieldsets[fieldsets.indexOf(fieldset) + 1];
    (next ? next.querySelector("input[type=radio]") : document.getElementById("download")).focus();
  });
  window.answersCsv = answersCsv;
  document.getElementById("download").addEventListener("click", function () {
    const blob = new Blob([answersCsv()], {type: "text/csv;charset=utf-8"});
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = DATA.rater + "-answers.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
  });
  update();
})();
"""


def _json_for_script(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _image_src(sheets_dir: Path, rel: str, embed: bool) -> str:
    if not embed:
        return rel
    kind = {".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}.get(Path(rel).suffix.lower(), "png")
    return f"data:image/{kind};base64," + base64.b64encode((sheets_dir / rel).read_bytes()).decode("ascii")


def _question(aspect: str) -> tuple[str, str]:
    return QUESTIONS.get(aspect, (aspect.replace("_", " ").capitalize(), "Which image is better?"))


def render(
    study: str, rater: str, aspects: list[str], rows: list[SheetRow], sheets_dir: Path, embed_images: bool = False
) -> str:
    nonce = secrets.token_urlsafe(18)
    data = {
        "study": study,
        "rater": rater,
        "aspects": aspects,
        "columns": list(ID_COLUMNS),
        "items": [row.item_id for row in rows],
    }
    keys = ", ".join(f"<kbd>{k}</kbd> {label}" for _, label, k in CHOICES)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        (
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' data: file:; "
            f"style-src 'unsafe-inline'; script-src 'nonce-{nonce}'\">"
        ),
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Image comparison: {escape(rater)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<header><h1>Which image is better?</h1>",
        (
            f"<p>Sheet <b>{escape(rater)}</b> &middot; {len(rows)} items. For each prompt compare the left and the "
            "right image on every question. Choose <i>Tie</i> when you see no difference.</p>"
        ),
        (
            f"<p>Keyboard: <kbd>Tab</kbd> moves between questions, arrow keys change the choice; {keys} answer the "
            "question in focus and move on. Answers are kept in this browser; press <b>Download answers</b> "
            "at the end and send the CSV file back.</p></header>"
        ),
        '<form id="sheet" autocomplete="off" onsubmit="return false">',
    ]
    for row in rows:
        item = escape(row.item_id)
        parts += [
            f'<section class="item" id="item-{item}" data-item="{item}">',
            f"<h2>Item {row.number} of {len(rows)}</h2>",
            f'<p class="prompt">{escape(row.prompt)}</p>',
            '<div class="pair">',
            (
                f'<figure><img src="{escape(_image_src(sheets_dir, row.left_image, embed_images))}" alt="Left image">'
                "<figcaption>Left</figcaption></figure>"
            ),
            (
                f'<figure><img src="{escape(_image_src(sheets_dir, row.right_image, embed_images))}" alt="Right image">'
                "<figcaption>Right</figcaption></figure>"
            ),
            "</div>",
        ]
        for aspect in aspects:
            title, question = _question(aspect)
            name = escape(f"{row.item_id}:{aspect}")
            parts.append(
                f'<fieldset data-aspect="{escape(aspect)}"><legend><b>{escape(title)}</b>: {escape(question)}</legend>'
            )
            for value, label, _ in CHOICES:
                parts.append(f'<label><input type="radio" name="{name}" value="{value}"><span>{label}</span></label>')
            parts.append("</fieldset>")
        parts.append("</section>")
    parts += [
        (
            '<div id="bar"><button type="button" id="download">Download answers (CSV)</button> '
            '<span id="progress" aria-live="polite"></span></div>'
        ),
        "</form>",
        f'<script type="application/json" id="sheet-data">{_json_for_script(data)}</script>',
        f'<script nonce="{nonce}">{_SCRIPT}</script>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
