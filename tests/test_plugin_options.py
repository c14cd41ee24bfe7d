"""Each plugin's one typed options definition: it parses --model-arg/--scorer-arg strings, feeds `ts-eval models|
scorers`, and is what the manifest records; `--model-args a=1,b=2` is the same as repeated `--model-arg`."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, fields

import pytest

from tests.support import ROOT, cli
from tests.test_core_install import BOOT, EXTRAS_MODULES
from ts_eval.errors import UsageError
from ts_eval.options import option, option_infos, parse_options, split_pairs
from ts_eval.registry import GENERATORS, SCORERS


@dataclass(frozen=True)
class Toy:
    """A toy plugin."""

    steps: int = option(50, "denoising steps")
    guidance: float | None = option(None, "guidance scale")
    safe: bool = option(True, "keep the filter")
    mode: str = option("fast", "how", choices=("fast", "exact"))
    name: str = option("", "a name")


@pytest.mark.parametrize(
    "args, message",
    [
        ({"stepz": "3"}, "unknown argument(s) for model 'toy': stepz; valid: guidance, mode, name, safe, steps"),
        ({"steps": "many"}, "model 'toy': steps='many' is not a valid int"),
        ({"steps": "2.5"}, "steps='2.5' is not a valid int"),
        ({"guidance": "nan"}, "guidance='nan' is not a valid float"),
        ({"guidance": "inf"}, "guidance='inf' is not a valid float"),
        ({"safe": "maybe"}, "safe='maybe' is not a valid true/false"),
        ({"mode": "slow"}, "model 'toy': mode='slow'; choose one of: fast, exact"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(args, message):
    with pytest.raises(UsageError) as caught:
        parse_options(args, Toy, "model 'toy'")
    assert str(caught.value) == message or message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_values_are_typed_and_defaults_fill_the_rest():
    parsed = parse_options({"steps": "3", "guidance": "7.5", "safe": "off", "mode": "exact"}, Toy, "model 'toy'")
    assert parsed == Toy(steps=3, guidance=7.5, safe=False, mode="exact", name="")
    assert parse_options({}, Toy, "model 'toy'") == Toy()
    # a run's recorded settings can stand in for the defaults (rescore starts from the run's judge)
    assert parse_options({"steps": "4"}, Toy, "x", defaults={"guidance": 2.0}) == Toy(steps=4, guidance=2.0)


def test_every_builtin_plugin_has_one_typed_definition_with_a_meaning_per_option():
    for table in (GENERATORS, SCORERS):
        for name, plugin in table.items():
            spec = plugin.options_class()
            infos = option_infos(spec)  # every type is one a k=v string can become
            assert infos and all(info.help for info in infos), name
            assert [f.name for f in fields(spec)] == [i.name for i in infos]


def test_the_listing_module_is_the_class_the_plugin_parses_with():
    """The registry names the options class in a light module; the plugin must parse with that very class."""
    import importlib.util

    for table in (GENERATORS, SCORERS):
        for name, plugin in table.items():
            module = plugin.target.partition(":")[0]
            if importlib.util.find_spec(module.split(".")[0]) is None:
                continue
            try:
                cls = plugin.load()
            except ImportError:  # its backend is not installed here
                continue
            assert cls.Options is plugin.options_class(), name


def test_split_pairs_escapes_commas_and_backslashes():
    assert split_pairs("a=1,b=2", "--model-args") == ["a=1", "b=2"]
    assert split_pairs(r"negative_prompt=blurry\, dark,steps=2", "--model-args") == [
        "negative_prompt=blurry, dark",
        "steps=2",
    ]
    assert split_pairs(r"path=C:\models\x\\,b=1", "--model-args") == [r"path=C:\models\x" + "\\", "b=1"]
    assert split_pairs("expr=a=b", "--model-args") == ["expr=a=b"]  # only the first '=' splits key and value
    for bad in ("a=1,,b=2", "a=1,", "a=1,dark"):
        with pytest.raises(UsageError, match="--model-args"):
            split_pairs(bad, "--model-args")


def _manifest(run):
    return json.loads((run / "manifest.json").read_text())


def test_model_args_is_the_same_as_repeated_model_arg_and_the_manifest_records_every_value(genai_527, tmp_path):
    common = ["run", "genai-bench", "--variant", "527", "--data", genai_527, "--limit", "2", "--scorer", "dummy", "-q"]
    assert cli(*common, "--model-arg", "resolution=32", "--model-arg", "batch_size=1", "--out", tmp_path / "a")[0] == 0
    assert cli(*common, "--model-args", "resolution=32,batch-size=1", "--out", tmp_path / "b")[0] == 0
    a, b = _manifest(tmp_path / "a"), _manifest(tmp_path / "b")
    assert a["settings"] == b["settings"]
    assert (
        a["generator_options"]
        == b["generator_options"]
        == {
            "name": "dummy",
            "args": {"resolution": "32", "batch_size": "1"},
            "settings": {"resolution": 32, "batch_size": 1},
        }
    )
    assert a["scorer_options"] == {"name": "dummy", "args": {}, "settings": {"binary": None, "dtype": "auto"}}
    # both forms mix, in command-line order: the later value wins
    assert (
        cli(
            *common,
            "--model-args",
            "resolution=16,batch_size=1",
            "--model-arg",
            "resolution=32",
            "--out",
            tmp_path / "c",
        )[0]
        == 0
    )
    assert _manifest(tmp_path / "c")["generator_options"]["settings"] == {"resolution": 32, "batch_size": 1}


def test_scorer_args_reach_the_scorer(genai_527, tmp_path, capsys):
    code, _, err = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--data",
        genai_527,
        "--limit",
        "2",
        "--scorer",
        "dummy",
        "--scorer-args",
        "binary=yes,dtype=fp32",
        "--out",
        tmp_path / "r",
        "-q",
        capsys=capsys,
    )
    assert code == 0, err
    recorded = _manifest(tmp_path / "r")["scorer_options"]
    assert recorded["settings"] == {"binary": True, "dtype": "fp32"}
    values = {json.loads(line)["value"] for line in (tmp_path / "r" / "samples.jsonl").read_text().splitlines()}
    assert values <= {0.0, 1.0}
    code, _, err = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--data",
        genai_527,
        "--scorer",
        "dummy",
        "--scorer-args",
        "binary=perhaps",
        "--out",
        tmp_path / "s",
        capsys=capsys,
    )
    assert code == 2 and err.strip() == "ts-eval: error: scorer 'dummy': binary='perhaps' is not a valid true/false"


def test_models_lists_each_option_with_type_default_and_meaning(capsys):
    code, out, _ = cli("models", capsys=capsys)
    assert code == 0
    for name in GENERATORS:
        assert f"\n{name}" in out
    assert "  resolution  int  64  side of each square image in pixels" in out  # dummy's, from its dataclass
    assert "cfg_schedule" in out and "half-linear" in out and "kv_cache" in out
    code, out, _ = cli("scorers", "clipscore", "--json", capsys=capsys)
    listed = json.loads(out)
    assert [e["name"] for e in listed] == ["clipscore"] and listed[0]["extra"] == "genai"
    variant = next(o for o in listed[0]["options"] if o["name"] == "variant")
    assert variant == {
        "name": "variant",
        "type": "str",
        "default": "hessel",
        "help": "the recipe (see docs/clipscore.md)",
        "choices": ["hessel", "t2v-metrics", "torchmetrics"],
    }
    code, _, err = cli("scorers", "vibes", capsys=capsys)
    assert code == 2 and "unknown scorer 'vibes'; choose one of:" in err


def _core(*args: str) -> subprocess.CompletedProcess:
    """The CLI with every extra's package marked absent, printing the heavy modules it imported."""
    probe = BOOT.replace(
        "raise SystemExit(main(sys.argv[1:]))",
        "code = main(sys.argv[1:])\nprint('LOADED', ' '.join(sorted(m for m in sys.modules if "
        "sys.modules[m] is not None and m.split('.')[0] in ('torch', 'transformers', 'open_clip', "
        "'diffusers', 'mmdet'))))\nraise SystemExit(code)",
    )
    return subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_listing_works_on_a_core_install_and_names_each_missing_extra():
    done = _core("models")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    reference = out.split("\nreference:", 1)[1].split("\n\n", 1)[0]
    assert "not installed: torch is not installed; run: pip install 'ts-eval[model]'" in reference
    assert "  window " in reference and "  cfg " in reference  # its options, without torch
    assert "not installed: diffusers is not installed; run: pip install 'ts-eval[diffusers]'" in out
    assert out.strip().endswith("LOADED")  # nothing heavy was imported
    done = _core("scorers")
    assert done.returncode == 0, done.stderr
    assert (
        "not installed: torch is not installed; run: pip install 'ts-eval[genai]' && pip install --no-deps "
        "t2v-metrics==3.0"
    ) in done.stdout
    geneval = done.stdout.split("\ngeneval:", 1)[1].split("\n\n", 1)[0]
    assert "detector=hf: torch is not installed; run: pip install 'ts-eval[geneval]'" in geneval
    assert done.stdout.strip().endswith("LOADED")
    assert set(EXTRAS_MODULES) >= {"torch", "transformers"}
