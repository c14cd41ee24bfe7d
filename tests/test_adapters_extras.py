"""The public-model adapters without their extras: one line naming the pip install, exit 2, and lazy imports."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from ts_eval.cli import main

HEAVY = {"torch", "transformers", "diffusers", "accelerate"}


def _run(genai_527: Path, out: Path, model: str, capsys) -> tuple[int, str]:
    code = main(
        [
            "run",
            "genai-bench",
            "--variant",
            "527",
            "--data",
            str(genai_527),
            "--model",
            model,
            "--model-arg",
            "path=some-org/some-model",
            "--scorer",
            "dummy",
            "--limit",
            "1",
            "--out",
            str(out),
        ]
    )
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "model, blocked, message",
    [
        ("diffusers", "diffusers", "diffusers is not installed; run: pip install 'ts-eval[diffusers]'"),
        ("diffusers", "torch", "torch is not installed; run: pip install 'ts-eval[diffusers]'"),
        ("janus", "transformers", "transformers is not installed; run: pip install 'ts-eval[janus]'"),
        ("janus", "torch", "torch is not installed; run: pip install 'ts-eval[janus]'"),
    ],
)
def test_missing_extra_is_one_line_exit_2(genai_527, tmp_path, monkeypatch, capsys, model, blocked, message):
    if blocked == "torch":  # the library itself must be there for torch to be the missing piece
        pytest.importorskip("diffusers" if model == "diffusers" else "transformers")
    monkeypatch.setitem(sys.modules, blocked, None)  # `import blocked` now raises ImportError
    out = tmp_path / "run"
    code, err = _run(genai_527, out, model, capsys)
    assert code == 2
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_transformers_without_janus_names_the_extra(genai_527, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    old = types.ModuleType("transformers")
    old.__version__ = "4.49.0"  # the version the genai extra pins: it predates Janus
    monkeypatch.setitem(sys.modules, "transformers", old)
    code, err = _run(genai_527, tmp_path / "run", "janus", capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "transformers 4.49.0 has no Janus model (added in 4.52); run: pip install 'ts-eval[janus]'" in err


def test_adapter_modules_import_no_backend():
    probe = (
        "import sys\nimport ts_eval.generators.diffusers_adapter, ts_eval.generators.janus, "
        "ts_eval.generators.python_entry, ts_eval.generators.pretrained\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not loaded & HEAVY, loaded & HEAVY
