"""`--model reference` through the harness: real PNGs, reproducible seeds, checkpoints, one-line errors."""

from __future__ import annotations

import argparse
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
from ts_eval.generators.token_shuffle.vq import to_uint8
from ts_eval.records import ImageRequest

pytestmark = pytest.mark.e2e  # the reference model end to end: outside the inner loop


def _run(genai_527: Path, out: Path, window: int, seed: int, *extra: str) -> int:
    return main(
        [
            "run",
            "genai-bench",
            "--variant",
            "527",
            "--data",
            str(genai_527),
            "--split",
            "hard",
            "--model",
            "reference",
            "--model-arg",
            "config=tiny",
            "--model-arg",
            f"window={window}",
            *extra,
            "--scorer",
            "dummy",
            "--limit",
            "3",
            "--seed",
            str(seed),
            "--out",
            str(out),
            "--quiet",
        ]
    )


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


@pytest.mark.parametrize(
    "arg, message",
    [
        ("window=3", "window 3 does not divide the 8x8 token grid"),
        ("resolution=100", "resolution 100 is not a multiple of the VQ stride 16"),
        ("config=huge", "unknown model config 'huge'"),
        ("cfg-schedule=cosine", "unknown cfg-schedule 'cosine'"),
        ("top-p=0", "top_p=0.0 is out of range"),
        ("kv-cache=false compile=true", "compile=true needs kv-cache=true"),
    ],
)
def test_bad_model_args_are_one_line_exit_2(genai_527, tmp_path, capsys, arg, message):
    out = tmp_path / "run"
    model_args = [flag for a in arg.split() for flag in ("--model-arg", a)]
    code = main(
        [
            "run",
            "genai-bench",
            "--variant",
            "527",
            "--data",
            str(genai_527),
            "--model",
            "reference",
            *model_args,
            "--scorer",
            "dummy",
            "--limit",
            "1",
            "--out",
            str(out),
        ]
    )
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
    with pytest.raises(
        UsageError, match=r"'shuffle_in.compress.weight' has shape \[4, 64\], the model expects \[16, 64\]"
    ):
        TokenShuffleGenerator({"checkpoint": str(tmp_path / "ckpt")}, device="cpu")
    with pytest.raises(UsageError, match=r"tensor 'tok_embeddings.weight' has shape \[517, 64\]"):
        TokenShuffleGenerator({"checkpoint": str(tmp_path / "ckpt"), "config": "small"}, device="cpu")
    with pytest.raises(UsageError, match="was trained with window 2, not 1"):
        TokenShuffleGenerator({"checkpoint": str(tmp_path / "ckpt"), "window": "1"}, device="cpu")
    code = main(
        [
            "run",
            "genai-bench",
            "--variant",
            "527",
            "--data",
            str(genai_527),
            "--model",
            "reference",
            "--model-arg",
            f"checkpoint={tmp_path / 'ckpt'}",
            "--scorer",
            "dummy",
            "--limit",
            "1",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "shuffle_in.compress.weight" in err
    assert not (tmp_path / "run").exists()


def test_vq_loads_llamagen_style_weights_and_ignores_the_encoder(tmp_path):
    args = CONFIGS["tiny"]
    source = build_vq(args, "cpu", seed=5)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    state["encoder.conv_in.weight"] = torch.zeros(3)  # LlamaGen files carry the encoder too
    state["quantize.codebook_used"] = torch.zeros(65536)
    # ... and the training script's argparse.Namespace, which the weights-only loader refuses by default
    torch.save(
        {"model": state, "args": argparse.Namespace(vq_model="VQ-16", codebook_size=16384, image_size=256)},
        tmp_path / "vq.pt",
    )
    loaded = build_vq(args, "cpu", path=tmp_path / "vq.pt")
    codes = torch.randint(0, args.codebook_size, (1, 8, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert loaded.decode_code(codes).shape == (1, 3, 128, 128)
        assert torch.equal(loaded.decode_code(codes), source.decode_code(codes))
    del state["decoder.conv_out.bias"]
    torch.save({"model": state}, tmp_path / "broken.pt")
    with pytest.raises(UsageError, match=r"tensor 'decoder\.conv_out\.bias' is missing"):
        build_vq(args, "cpu", path=tmp_path / "broken.pt")


class Payload:
    """Any global other than the allow-listed Namespace: unpickling it could run code."""

    def __reduce__(self):
        return (print, ("unpickled",))


def test_weights_files_refuse_every_global_but_the_namespace(tmp_path, capsys):
    state = build_vq(CONFIGS["tiny"], "cpu", seed=5).state_dict()
    torch.save({"model": state, "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UsageError, match="not a readable torch weights file"):
        build_vq(CONFIGS["tiny"], "cpu", path=tmp_path / "evil.pt")
    assert "unpickled" not in capsys.readouterr().out  # refused before anything ran
    torch.save({"model": state, "args": argparse.Namespace(opt=torch.optim.SGD)}, tmp_path / "class.pt")
    with pytest.raises(UsageError, match="not a readable torch weights file"):  # a Namespace holding a class
        build_vq(CONFIGS["tiny"], "cpu", path=tmp_path / "class.pt")


def test_vq_decodes_in_fp32_whatever_the_transformer_dtype():
    generator = TokenShuffleGenerator({"dtype": "bf16", "window": "2"}, device="cpu")
    assert generator.model.output.weight.dtype == torch.bfloat16
    assert {p.dtype for p in generator.vq.parameters()} == {torch.float32}
    assert generator.describe()["config"]["vq_dtype"] == "float32"
    codes = torch.randint(0, CONFIGS["tiny"].codebook_size, (2, 8, 8), generator=torch.Generator().manual_seed(0))
    fp32 = build_vq(CONFIGS["tiny"], "cpu", seed=1)  # the same init seed as the generator's decoder
    with torch.no_grad():
        expected = [to_uint8(fp32.decode_code(c[None]))[0].numpy() for c in codes]
        in_bf16 = to_uint8(fp32.to(torch.bfloat16).decode_code(codes)).numpy()
    images = [np.asarray(i) for i in generator.decode(codes)]
    assert all(np.array_equal(a, b) for a, b in zip(images, expected))
    assert any(not np.array_equal(a, b) for a, b in zip(images, in_bf16))  # what a bf16 decoder would give


def test_images_do_not_depend_on_the_batch_size_with_two_threads():
    """Transformer rows and the VQ decoder batch-invariant on CPU at 2 threads: batch 1 vs 8, byte-identical."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        texts = [
            "a red apple",
            "a long prompt about a blue car parked next to a very old house by the sea",
            "x",
            "two dogs",
            "a cat on a mat",
            "a sunset over mountains, a lake, trees and a small boat",
            "",
            "ok",
        ]
        requests = [ImageRequest(str(i), t, 0, 1000 + i) for i, t in enumerate(texts)]
        for window in ("1", "2"):  # 64 px: a 4x4 token grid keeps this fast with two busy threads
            alone = TokenShuffleGenerator({"window": window, "batch_size": "1", "resolution": "64"}, device="cpu")
            batched = TokenShuffleGenerator({"window": window, "batch_size": "8", "resolution": "64"}, device="cpu")
            one_by_one = [np.asarray(alone.generate([r])[0]).tobytes() for r in requests]
            together = [np.asarray(i).tobytes() for i in batched.generate(requests)]
            assert one_by_one == together
            assert len(set(together)) == len(together)  # eight different pictures
            assert alone.describe() == batched.describe()  # on CPU the batch size is not part of the identity
    finally:
        torch.set_num_threads(threads)


def test_images_do_not_depend_on_the_thread_count():
    """DESIGN: an image depends on its request and the model settings, never on the machine's cores."""
    threads = torch.get_num_threads()
    requests = [ImageRequest(str(i), t, 0, 2000 + i) for i, t in enumerate(["a red apple", "two dogs", "ok"])]
    made = {}
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            generator = TokenShuffleGenerator({"window": "2", "resolution": "64"}, device="cpu")
            made[count] = [np.asarray(image).tobytes() for image in generator.generate(requests)]
    finally:
        torch.set_num_threads(threads)
    assert made[1] == made[2]


def test_describe_holds_the_batch_size_on_cuda_only(monkeypatch):
    generator = TokenShuffleGenerator({"batch_size": "4"}, device="cpu")
    assert "batch_size" not in generator.describe()["config"]
    monkeypatch.setattr(generator, "device", torch.device("cuda"))  # what describe() sees on a GPU
    assert generator.describe()["config"]["batch_size"] == 4


def test_describe_changes_with_every_setting_that_changes_images():
    base = TokenShuffleGenerator({}, device="cpu").describe()
    assert base["config"]["sampler"]  # the noise source is part of the identity
    for args in (
        {"window": "1"},
        {"cfg": "3"},
        {"init_seed": "1"},
        {"cfg_schedule": "linear"},
        {"top_k": "10"},
        {"dtype": "bf16"},
        {"compile": "true"},
    ):
        assert TokenShuffleGenerator(args, device="cpu").describe() != base
    assert (
        hashlib.sha256(repr(base).encode()).hexdigest()
        == hashlib.sha256(repr(TokenShuffleGenerator({}, device="cpu").describe()).encode()).hexdigest()
    )


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
    assert generator.model.inv_freq.dtype == torch.float32  # RoPE frequencies are not rounded to bf16
    images = generator.generate(_requests())
    assert [i.size for i in images] == [(128, 128)] * 2
