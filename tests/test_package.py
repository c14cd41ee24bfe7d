"""The package stays light: importing it and asking for help load no torch backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    assert "pandas" not in loaded  # the Python API's names (evaluate, score, Results) load on first use
    loaded = _modules_after("import ts_eval\nts_eval.evaluate, ts_eval.score, ts_eval.run, ts_eval.Results")
    assert not loaded & {*HEAVY, "pandas"}, loaded & {*HEAVY, "pandas"}
    loaded = _modules_after("from ts_eval.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_registry_targets_are_module_colon_class_strings():
    for table in (GENERATORS, SCORERS):
        for plugin in table.values():
            module, _, attr = plugin.target.partition(":")
            assert module.startswith("ts_eval.") and attr and attr[0].isupper()


def test_plugins_declared_core_import_without_any_extra():
    # A plugin with no requirement must not need an extra even to be imported: its module loads with every
    # extra's packages marked absent.
    from tests.test_core_install import EXTRAS_MODULES

    core = sorted({p.target for t in (GENERATORS, SCORERS) for p in t.values() if p.needs is None})
    probe = (
        f"import importlib, sys\nfor name in {EXTRAS_MODULES!r}:\n    sys.modules[name] = None\n"
        f"for target in {core!r}:\n    module, _, attr = target.partition(':')\n"
        "    getattr(importlib.import_module(module), attr)\nprint('ok')"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    assert "ts_eval.geneval.scorer:GenEvalScorer" in core and "ts_eval.scorers.dummy:DummyScorer" in core


def test_each_extra_named_by_the_registry_exists_in_pyproject():
    import tomllib

    from ts_eval.registry import FEATURES

    extras = tomllib.loads((Path(ts_eval.__file__).parent.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    named = {p.needs.extra for t in (GENERATORS, SCORERS) for p in t.values() if p.needs}
    named |= {
        r.extra
        for t in (GENERATORS, SCORERS)
        for p in t.values()
        for c in p.needs_by_option.values()
        for r in c.values()
    }
    named |= {r.extra for r in FEATURES.values()}
    assert named <= set(extras), named - set(extras)


def test_version_is_exposed():
    assert ts_eval.__version__.count(".") == 2
