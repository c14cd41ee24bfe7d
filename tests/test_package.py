"""The package stays light: importing it and asking for help load no torch backend."""

from __future__ import annotations

import subprocess
import sys

import ts_eval
from ts_eval.registry import GENERATORS, SCORERS

HEAVY = ["torch", "transformers", "t2v_metrics", "open_clip", "mmdet", "mmcv", "diffusers"]


def _modules_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_and_help_load_no_backend():
    loaded = _modules_after("import ts_eval")
    assert not loaded & set(HEAVY)
    loaded = _modules_after("from ts_eval.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_registry_targets_are_module_colon_class_strings():
    for table in (GENERATORS, SCORERS):
        for target in table.values():
            module, _, attr = target.partition(":")
            assert module.startswith("ts_eval.") and attr and attr[0].isupper()


def test_version_is_exposed():
    assert ts_eval.__version__.count(".") == 2
