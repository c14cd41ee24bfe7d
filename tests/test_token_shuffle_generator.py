"""`--model reference` through the harness: real PNGs, reproducible seeds, checkpoints, one-line errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ts_eval.cli import main
from ts_eval.errors import UsageError
from ts_eval.generators.token_shuffle.checkpoint import save_checkpoint
from ts_eval.generators.token_shuffle.configs import CONFIGS
from ts_eval.generators.token_shuffle.generator import TokenShuffleGenerator, build_vq
from ts_eval.records import ImageRequest


def _run(genai_527: Path, out: Path, window: int, seed: int, *extra: str) -> int:
    return main(["run", "genai-bench", "--variant", "527", "--data", str(genai_527), "--split", "hard",
                 "--model", "reference", "--model-arg", "config=tiny", "--model-arg", f"window={window}",
                 *extra, "--scorer", "dummy", "--limit", "3", "--seed", str(seed), "--out", str(out), "--quiet"])


def _pngs(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "images").rglob("*.*"))}


@pytest.mark.parametrize("window", [1, 2, 4])
def test_run_writes_three_reproducible_pngs(genai_527, tmp_path, window, capsys):
    assert _run(genai_527, tmp_path / "a", window, 7) == 0
    assert _run(genai_527, tmp_path / "b", window, 7) == 0
    assert _run(genai_527, tmp_path / "c", window, 8) == 0
    a, b, c = (_pngs(tmp_path / x) for x in "abc")
    assert len(a) == 3
    for data in a.values():
        image = Image.open(__import__("io").BytesIO(data))
        assert image.size == (128, 128) and image.mode == "RGB"
        assert np.asarray(image).std() > 5  # a real picture, not a flat fill
    assert a == b  # same seed: byte-identical
    assert all(a[k] != c[k] for k in a)  # another seed: other images


@pytest.mark.parametrize("arg, message", [
    ("window=3", "window 3 does not divide the 8x8 token grid"),
    ("resolution=100", "resolution 100 is not a multiple of the VQ stride 16"),
    ("config=huge", "unknown model config 'huge'"),
    ("cfg-schedule=cosine", "unknown cfg-schedule 'cosine'"),
    ("top-p=0", "top_p=0.0 is out of range"),
])
def test_bad_model_args_are_one_line_exit_2(genai_527, tmp_path, capsys, arg, message):
    out = tmp_path / "run"
    code = main(["run", "genai-bench", "--variant", "527", "--data", str(genai_527), "--model", "reference",
                 "--model-arg", arg, "--scorer", "dummy", "--limit", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()  # nothing written


def _requests():
    return [ImageRequest("1", "a red apple", 0, 11), ImageRequest("2", "a long prompt about a blue car", 0, 12)]


def test_checkpoint_round_trip_gives_the_same_images(tmp_path):
    random_init = TokenShuffleGenerator({"window": "2", "init_seed": "3"}, device="cpu")
    save_checkpoint(tmp_path / "ckpt", random_init.args, 2, random_init.model, random_init.vq)
    loaded = TokenShuffleGenerator({"checkpoint": str(tmp_path / "ckpt")}, device="cpu")
    assert loaded.window == 2 and loaded.args == CONFIGS["tiny"]
    assert loaded.describe()["checkpoint_sha256"] is not None
    before = [np.asarray(i) for i in random_init.generate(_requests())]
    after = [np.asarray(i) for i in loaded.generate(_requests())]
    assert all(np.array_equal(x, y) for x, y in zip(before, after))


def test_checkpoint_with_wrong_shapes_names_the_tensor(tmp_path, genai_527, capsys):
    window4 = TokenShuffleGenerator({"window": "4"}, device="cpu")
    save_checkpoint(tmp_path / "ckpt", window4.args, 2, window4.model)  # config says window 2, tensors are window 4
    with pytest.raises(UsageError, match=r"'shuffle_in.compress.weight' has shape \[4, 64\], the model expects \[16, 64\]"):
        TokenShuffleGenerator({"checkpoint": str(tmp_path / "ckpt")}, device="cpu")
    with pytest.raises(UsageError, match=r"tensor 'tok_embeddings.weight' has shape \[517, 64\]"):
        TokenShuffleGenerator({"checkpoint": str(tmp_path / "ckpt"), "config": "small"}, device="cpu")
    with pytest.raises(UsageError, match="was trained with window 2, not 1"):
        TokenShuffleGenerator({"checkpoint": str(tmp_path / "ckpt"), "window": "1"}, device="cpu")
    code = main(["run", "genai-bench", "--variant", "527", "--data", str(genai_527), "--model", "reference",
                 "--model-arg", f"checkpoint={tmp_path / 'ckpt'}", "--scorer", "dummy", "--limit", "1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "shuffle_in.compress.weight" in err
    assert not (tmp_path / "run").exists()


def test_vq_loads_llamagen_style_weights_and_ignores_the_encoder(tmp_path):
    args = CONFIGS["tiny"]
    source = build_vq(args, "cpu", torch.float32, seed=5)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    state["encoder.conv_in.weight"] = torch.zeros(3)  # LlamaGen files carry the encoder too
    state["quantize.codebook_used"] = torch.zeros(65536)
    torch.save({"model": state}, tmp_path / "vq.pt")
    loaded = build_vq(args, "cpu", torch.float32, path=tmp_path / "vq.pt")
    codes = torch.randint(0, args.codebook_size, (1, 8, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert loaded.decode_code(codes).shape == (1, 3, 128, 128)
        assert torch.equal(loaded.decode_code(codes), source.decode_code(codes))
    del state["decoder.conv_out.bias"]
    torch.save({"model": state}, tmp_path / "broken.pt")
    with pytest.raises(UsageError, match="tensor 'decoder.conv_out.bias' is missing"):
        build_vq(args, "cpu", torch.float32, path=tmp_path / "broken.pt")


def test_describe_changes_with_every_setting_that_changes_images():
    base = TokenShuffleGenerator({}, device="cpu").describe()
    for args in ({"window": "1"}, {"cfg": "3"}, {"init_seed": "1"}, {"cfg_schedule": "linear"}, {"top_k": "10"}):
        assert TokenShuffleGenerator(args, device="cpu").describe() != base
    assert hashlib.sha256(repr(base).encode()).hexdigest() == hashlib.sha256(
        repr(TokenShuffleGenerator({}, device="cpu").describe()).encode()).hexdigest()


def _word_tokenizer(folder: Path, extra_words: int = 0) -> Path:
    pytest.importorskip("transformers", reason="Hugging Face tokenizers need the [genai] extra")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<s>": 0, "<unk>": 1, "a": 2, "red": 3, "apple": 4, **{f"w{i}": 5 + i for i in range(extra_words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", unk_token="<unk>").save_pretrained(folder)
    return folder


def test_hugging_face_tokenizer_by_path(tmp_path):
    path = _word_tokenizer(tmp_path / "tok")
    generator = TokenShuffleGenerator({"tokenizer": str(path)}, device="cpu")
    assert generator.prompt_ids("a red apple") == [0, 2, 3, 4]  # <bos> first
    assert generator.describe()["config"]["tokenizer"] == str(path)
    assert len(generator.generate(_requests()[:1])) == 1
    with pytest.raises(UsageError, match="has 305 ids but the model's text vocabulary holds 259"):
        TokenShuffleGenerator({"tokenizer": str(_word_tokenizer(tmp_path / "big", 300))}, device="cpu")


def test_bf16_generation_on_cpu():
    generator = TokenShuffleGenerator({"dtype": "bf16", "window": "4"}, device="cpu")
    assert generator.model.output.weight.dtype == torch.bfloat16
    images = generator.generate(_requests())
    assert [i.size for i in images] == [(128, 128)] * 2
