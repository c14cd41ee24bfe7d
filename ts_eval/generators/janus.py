"""`--model janus`: Janus-Pro text-to-image through transformers' `JanusForConditionalGeneration`.

    ts-eval run genai-bench --model janus --model-arg path=deepseek-community/Janus-Pro-7B

Options (`--model-arg k=v`): path (a Hub repo in transformers' Janus format, or a local folder; default
deepseek-community/Janus-Pro-7B), revision (default main; the manifest records the commit), cfg (default 5),
temperature (default 1; 0 picks the most likely token), dtype (default --dtype: bf16 on CUDA, fp32 on CPU),
batch_size (default 16, the reference script's parallel_size).

Sampling follows DeepSeek's reference `generate` (generation_inference.py in deepseek-ai/Janus): the prompt
in the SFT format with an empty system prompt, then <begin_of_image>; the unconditional row keeps BOS and
<begin_of_image> and pads everything else; logits = uncond + cfg * (cond - uncond); softmax(logits / T);
one multinomial draw per token, no top-k or top-p; the VQ decoder turns the token grid into pixels
clip((x + 1) / 2 * 255). Two deliberate differences: logits are mixed in fp32, and each image draws from its
own `torch.Generator` seeded with the request's seed, so an image does not depend on the rest of its batch
(exactly so in fp32 on CPU, tested; in bf16 on a GPU, batched kernels round differently and can rarely tip
a draw, as for any batched sampler).
transformers' own `generate(generation_mode="image")` draws every row from the global RNG (and adds any
top-k a generation config sets), so it is used only as the greedy cross-check in the tests.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ts_eval import hub
from ts_eval.devices import torch_device, torch_dtype
from ts_eval.errors import UsageError, missing_extra
from ts_eval.generators.pretrained import Source, load_failed, local_sha256, resolve_source
from ts_eval.options import option, parse_options
from ts_eval.records import ImageRequest

OWNER = "model 'janus'"
DEFAULT_REPO = "deepseek-community/Janus-Pro-7B"


@dataclass(frozen=True)
class JanusOptions:
    """Janus-Pro text-to-image through transformers, sampled as DeepSeek's reference generate()."""

    path: str = option(DEFAULT_REPO, "Hub repo in transformers' Janus format, or a local folder")
    revision: str | None = option(None, "Hub branch, tag or commit (unset: main); the manifest records the commit")
    cfg: float = option(5.0, "classifier-free guidance scale (at least 1)")
    temperature: float = option(1.0, "sampling temperature (0: the most likely token)")
    dtype: str | None = option(None, "fp32, bf16 or fp16 (unset: --dtype)")
    batch_size: int = option(16, "prompts per batch (the reference script's parallel_size)")


def import_janus():
    """transformers (with Janus, 4.52 or newer) and torch, or one line naming the extra that installs them."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise missing_extra(exc.name or "transformers", "janus") from None
    if not hasattr(transformers, "JanusForConditionalGeneration"):
        raise UsageError(
            f"transformers {transformers.__version__} has no Janus model (added in 4.52); "
            "run: pip install 'ts-eval[janus]'"
        )
    hub.quiet_third_party_logs()  # transformers sets up its own log handler on import
    return transformers, torch


class JanusGenerator:
    name = "janus"
    Options = JanusOptions

    def __init__(self, args: dict[str, str], device: str = "auto", dtype: str = "auto"):
        self.options = opts = parse_options(args, JanusOptions, OWNER)
        transformers, torch = import_janus()
        self._torch = torch
        self.library_version = transformers.__version__
        self.device = torch_device(device)
        self.dtype = torch_dtype(opts.dtype or dtype, self.device)
        self.cfg, self.temperature, self.batch_size = opts.cfg, opts.temperature, opts.batch_size
        for key, ok in (
            ("cfg", self.cfg >= 1.0),
            ("temperature", self.temperature >= 0),
            ("batch_size", self.batch_size >= 1),
        ):
            if not ok:
                raise UsageError(
                    f"{OWNER}: {key}={getattr(opts, key)} is out of range (cfg >= 1, temperature >= 0, batch_size >= 1)"
                )
        self.source = resolve_source(opts.path, opts.revision, OWNER)
        self.model, self.processor, self.commit = self._load(transformers, self.source)
        self.weights_sha256 = local_sha256(self.source)
        tokenizer = self.processor.tokenizer
        pad = self.model.generation_config.pad_token_id
        self.ids = PromptIds(
            bos=tokenizer.bos_token_id,
            boi=tokenizer.convert_tokens_to_ids(self.processor.image_start_token),
            pad=tokenizer.pad_token_id if pad is None else pad,
        )
        vq = self.model.config.vq_config
        self.grid = vq.num_patches
        self.resolution = vq.num_patches * 2 ** (len(vq.channel_multiplier) - 1)

    def _load(self, transformers, source: Source):
        dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        try:
            model = transformers.JanusForConditionalGeneration.from_pretrained(
                source.path, revision=source.revision, **{dtype_key: self.dtype}
            )
            # The processor comes from the same commit as the weights, even if the branch moves meanwhile.
            commit = None if source.local else getattr(model.config, "_commit_hash", None)
            processor = transformers.JanusProcessor.from_pretrained(source.path, revision=commit or source.revision)
        except (OSError, ValueError) as exc:
            raise load_failed("Janus model", source, exc) from None
        return model.to(self.device).eval(), processor, commit

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": {
                **self.source.describe(self.commit),
                "cfg": self.cfg,
                "temperature": self.temperature,
                "image_tokens": self.grid * self.grid,
                "resolution": self.resolution,
                "dtype": str(self.dtype).removeprefix("torch."),
                "device_type": self.device.type,
                "transformers": self.library_version,
            },
            "checkpoint_sha256": self.weights_sha256,
        }

    def prompt_text(self, prompt: str) -> str:
        conversation = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(conversation, add_generation_prompt=True)

    def generate_tokens(self, requests: list[ImageRequest]):
        torch = self._torch
        inputs = self.processor(
            text=[self.prompt_text(r.prompt) for r in requests],
            generation_mode="image",
            padding=True,
            return_tensors="pt",
        )
        generators = [torch.Generator(device=self.device).manual_seed(r.seed) for r in requests]
        with torch.no_grad():
            return sample_image_tokens(
                self.model,
                inputs["input_ids"].to(self.device),
                inputs["attention_mask"].to(self.device),
                self.ids,
                self.grid * self.grid,
                cfg=self.cfg,
                temperature=self.temperature,
                generators=generators,
            )

    def decode(self, tokens) -> list[Image.Image]:
        torch = self._torch
        images = []
        with torch.no_grad():
            for row in tokens:  # one at a time: batched convolutions would round differently per batch
                pixels = self.model.decode_image_tokens(row[None])[0].float()  # (H, W, 3) in [-1, 1]
                pixels = ((pixels + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)
                images.append(Image.fromarray(pixels.cpu().numpy(), "RGB"))
        return images

    def generate(self, requests: list[ImageRequest]) -> list[Image.Image]:
        return self.decode(self.generate_tokens(requests))


@dataclass(frozen=True)
class PromptIds:
    """The token ids the CFG prompt rows are built from."""

    bos: int
    boi: int  # <begin_of_image>
    pad: int


def sample_image_tokens(
    model, input_ids, attention_mask, ids: PromptIds, n_tokens: int, *, cfg: float, temperature: float, generators: list
):
    """Janus-Pro's CFG sampling loop over transformers' modules; returns (B, n_tokens) image token ids.

    Rows are [cond..., uncond...]; prompts are left-padded, so positions count only real tokens.
    """
    import torch
    from transformers import DynamicCache

    batch = input_ids.shape[0]
    uncond = input_ids.masked_fill((input_ids != ids.bos) & (input_ids != ids.boi), ids.pad)
    mask = torch.cat([attention_mask, attention_mask])
    embeds = model.get_input_embeddings()(torch.cat([input_ids, uncond]))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    language_model = model.model.language_model
    # transformers 5 renamed the cache argument; the cache object is updated in place either way.
    cache_arg = "cache" if "cache" in inspect.signature(language_model.forward).parameters else "past_key_values"
    cache = DynamicCache()
    tokens = torch.zeros(batch, n_tokens, dtype=torch.long, device=input_ids.device)
    for step in range(n_tokens):
        hidden = language_model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True, **{cache_arg: cache}
        ).last_hidden_state[:, -1]
        logits = model.model.generation_head(hidden).float()
        mixed = logits[batch:] + cfg * (logits[:batch] - logits[batch:])
        if temperature == 0:
            chosen = mixed.argmax(dim=-1)
        else:
            probs = torch.softmax(mixed / temperature, dim=-1)
            chosen = torch.cat([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)])
        tokens[:, step] = chosen
        embeds = model.prepare_embeddings_for_image_generation(torch.cat([chosen, chosen]))[:, None]
        mask = torch.cat([mask, mask.new_ones(2 * batch, 1)], dim=-1)
        positions = positions[:, -1:] + 1
    return tokens
