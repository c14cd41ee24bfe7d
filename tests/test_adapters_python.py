"""`--model python`: a user's own `(prompts, seeds) -> images` function, and the one-line errors around it."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from ts_eval.cli import main
from ts_eval.errors import UsageError
from ts_eval.generators.python_entry import PythonGenerator
from ts_eval.records import ImageRequest
from ts_eval.store import read_jsonl

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "my_generator.py"


def _run(genai_527: Path, out: Path, entry: str, *extra: str) -> int:
    return main(
        [
            "run",
            "genai-bench",
            "--variant",
            "527",
            "--data",
            str(genai_527),
            "--model",
            "python",
            "--model-arg",
            f"entry={entry}",
            *extra,
            "--scorer",
            "dummy",
            "--limit",
            "4",
            "--out",
            str(out),
            "--quiet",
        ]
    )


def _pngs(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "images").rglob("*.*"))}


def test_example_makes_a_full_reproducible_run(genai_527, tmp_path):
    entry = f"{EXAMPLE}:generate"
    assert _run(genai_527, tmp_path / "a", entry) == 0
    assert _run(genai_527, tmp_path / "b", entry) == 0
    assert _run(genai_527, tmp_path / "c", entry, "--seed", "1") == 0
    a, b, c = (_pngs(tmp_path / x) for x in "abc")
    assert len(a) == 4 and a == b
    assert all(a[k] != c[k] for k in a)
    rows = read_jsonl(tmp_path / "a" / "images.jsonl")
    assert len(rows) == 4 and len({r["seed"] for r in rows}) == 4
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    generator = manifest["settings"]["generator"]
    assert generator["name"] == "python"
    assert generator["config"] == {"entry": entry, "source_sha256": hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()}
    assert (tmp_path / "a" / "summary.json").is_file()


def test_images_depend_on_prompt_and_seed_only():
    generator = PythonGenerator({"entry": f"{EXAMPLE}:generate"})
    requests = [ImageRequest(str(i), f"prompt number {i}", 0, 1000 + i) for i in range(5)]
    batch = generator.generate(requests)
    singles = [generator.generate([r])[0] for r in requests]
    assert [im.tobytes() for im in batch] == [im.tobytes() for im in singles]
    assert len({im.tobytes() for im in batch}) == 5


def test_module_colon_function_imports_from_the_current_directory(tmp_path, monkeypatch, genai_527):
    (tmp_path / "my_sampler.py").write_text(
        textwrap.dedent("""
        from PIL import Image
        def make(prompts, seeds):
            return [Image.new("RGB", (16, 16), (s % 256, len(p) % 256, 0)) for p, s in zip(prompts, seeds)]
    """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "my_sampler", raising=False)
    assert _run(genai_527, tmp_path / "run", "my_sampler:make") == 0
    images = sorted((tmp_path / "run" / "images").rglob("*.jpg"))
    assert len(images) == 4 and Image.open(images[0]).size == (16, 16)


def _user_module(tmp_path: Path, body: str) -> str:
    path = tmp_path / "user_gen.py"
    path.write_text("from PIL import Image\n" + textwrap.dedent(body))
    return str(path)


@pytest.mark.parametrize(
    "entry, message",
    [
        ("no_colon_here", "must be module:function"),
        ("examples/my_generator.py:", "must be module:function"),
        ("surely_not_a_module_xyz:generate", "cannot import 'surely_not_a_module_xyz' (ModuleNotFoundError"),
        ("missing/file.py:generate", "entry file missing/file.py does not exist"),
        (f"{EXAMPLE}:nothing", "has no attribute 'nothing'"),
        (f"{EXAMPLE}:random", "is a module, not a function"),
    ],
)
def test_bad_entry_is_one_line_exit_2(genai_527, tmp_path, capsys, entry, message):
    out = tmp_path / "run"
    code = _run(genai_527, out, entry)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "body, message",
    [
        ("def generate(prompts):\n    return []\n", "must take (prompts: list[str], seeds: list[int])"),
        ("def generate(prompts, seeds):\n    return [Image.new('RGB', (8, 8))]\n", "returned 1 images for 4 prompts"),
        ("def generate(prompts, seeds):\n    return [p for p in prompts]\n", "returned str at position 0"),
        (
            "def generate(prompts, seeds):\n    return Image.new('RGB', (8, 8))\n",
            "returned Image; it must return a list",
        ),
        (
            "raise ImportError('needs torch 9')\ndef generate(prompts, seeds):\n    return []\n",
            "(ImportError: needs torch 9)",
        ),
    ],
)
def test_bad_function_is_one_line_exit_2(genai_527, tmp_path, capsys, body, message):
    entry = _user_module(tmp_path, body) + ":generate"
    code = _run(genai_527, tmp_path / "run", entry, "--model-arg", "batch_size=4")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1, err


def test_missing_entry_and_unknown_option():
    with pytest.raises(UsageError, match="needs --model-arg entry=module:function"):
        PythonGenerator({})
    with pytest.raises(UsageError, match="unknown argument"):
        PythonGenerator({"entry": f"{EXAMPLE}:generate", "steps": "3"})
