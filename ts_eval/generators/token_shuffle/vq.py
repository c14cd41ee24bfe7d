"""The VQ image decoder: codes -> pixels, in LlamaGen's VQ layout (arXiv 2406.06525, `VQ_8`/`VQ_16`).

Parameter names follow LlamaGen's `VQModel` (`quantize.embedding`, `post_quant_conv`, `decoder.*`), so its
released text-to-image tokenizer weights (`vq_ds16_t2i.pt`, key "model") load as they are; encoder tensors in
such a file are ignored. A small `VQArgs` gives a tiny random decoder of the same architecture for tests.

The decoder always runs in fp32, whatever the Transformer's dtype, as LlamaGen decodes; and the generator
decodes each image alone, so a batched convolution's rounding never makes an image depend on its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ts_eval.generators.token_shuffle.configs import VQArgs


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.norm1 = _norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = _norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels of the lowest-resolution feature map."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = _norm(ch)
        self.q, self.k, self.v = (nn.Conv2d(ch, ch, 1) for _ in range(3))
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (conv(y).flatten(2).transpose(1, 2)[:, None] for conv in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)[:, 0]  # scale 1/sqrt(c), as the original
        return x + self.proj_out(out.transpose(1, 2).reshape(b, c, h, w))


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution of the decoder: `res` blocks, `attn` blocks at the lowest level, then `upsample`."""

    def __init__(self, in_ch: int, out_ch: int, n_blocks: int, with_attn: bool, with_upsample: bool):
        super().__init__()
        self.res = nn.ModuleList()
        self.attn = nn.ModuleList()
        for _ in range(n_blocks):
            self.res.append(ResnetBlock(in_ch, out_ch))
            in_ch = out_ch
            if with_attn:
                self.attn.append(AttnBlock(out_ch))
        self.upsample = Upsample(out_ch) if with_upsample else None

    def forward(self, h):
        for i, block in enumerate(self.res):
            h = block(h)
            if len(self.attn):
                h = self.attn[i](h)
        return h if self.upsample is None else self.upsample(h)


class Decoder(nn.Module):
    def __init__(self, args: VQArgs, out_channels: int = 3):
        super().__init__()
        mult = args.ch_mult
        block_in = args.ch * mult[-1]
        self.conv_in = nn.Conv2d(args.z_channels, block_in, 3, padding=1)
        self.mid = nn.ModuleList(
            [ResnetBlock(block_in, block_in), AttnBlock(block_in), ResnetBlock(block_in, block_in)]
        )
        self.conv_blocks = nn.ModuleList()
        for level in reversed(range(len(mult))):
            block_out = args.ch * mult[level]
            self.conv_blocks.append(
                _Level(
                    block_in,
                    block_out,
                    args.num_res_blocks + 1,
                    with_attn=level == len(mult) - 1,
                    with_upsample=level != 0,
                )
            )
            block_in = block_out
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in self.conv_blocks:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class _Quantize(nn.Module):
    def __init__(self, args: VQArgs):
        super().__init__()
        self.l2_norm = args.codebook_l2_norm
        self.embedding = nn.Embedding(args.codebook_size, args.codebook_embed_dim)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, H, W) codes -> (B, C, H, W) codebook vectors (l2-normalised codebook, as LlamaGen)."""
        table = F.normalize(self.embedding.weight, p=2, dim=-1) if self.l2_norm else self.embedding.weight
        return table[codes].permute(0, 3, 1, 2)


class VQDecoder(nn.Module):
    def __init__(self, args: VQArgs):
        super().__init__()
        self.args = args
        self.quantize = _Quantize(args)
        self.post_quant_conv = nn.Conv2d(args.codebook_embed_dim, args.z_channels, 1)
        self.decoder = Decoder(args)

    @property
    def downsample(self) -> int:
        return self.args.downsample

    def decode_code(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, H, W) codebook indices -> (B, 3, H·ds, W·ds) pixels in [-1, 1] (unclamped)."""
        z = self.quantize.lookup(codes).to(self.post_quant_conv.weight.dtype)
        return self.decoder(self.post_quant_conv(z))


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (B, 3, H, W) -> uint8 (B, H, W, 3)."""
    return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
