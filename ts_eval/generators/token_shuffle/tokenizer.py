"""Text tokenizers: a byte-level one built in (works offline), or any Hugging Face tokenizer by name/path.

Text ids occupy the first `text_vocab_size` ids of the shared vocabulary (see `configs.ModelArgs`).
"""

from __future__ import annotations

from typing import Protocol

from ts_eval.errors import UsageError, missing_extra


class TextTokenizer(Protocol):
    name: str
    vocab_size: int

    def encode(self, text: str) -> list[int]:
        """Ids of `text`, beginning-of-sequence included."""
        ...


class ByteTokenizer:
    """UTF-8 bytes 0-255, then <bos> 256, <eos> 257, <pad> 258."""

    name = "byte"
    vocab_size = 259
    bos, eos, pad = 256, 257, 258

    def encode(self, text: str) -> list[int]:
        return [self.bos, *text.encode("utf-8")]


class HFTokenizer:
    def __init__(self, name_or_path: str):
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise missing_extra("transformers", "genai") from None
        try:
            self._tok = AutoTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"tokenizer '{name_or_path}' could not be loaded ({str(exc).splitlines()[0]}); "
                "give a local folder with the tokenizer files"
            ) from None
        self.name = name_or_path
        self.vocab_size = len(self._tok)

    def encode(self, text: str) -> list[int]:
        ids = self._tok(text, add_special_tokens=True)["input_ids"]
        if not ids or ids[0] != self._tok.bos_token_id:
            ids = ([self._tok.bos_token_id] if self._tok.bos_token_id is not None else []) + ids
        return ids


def load_tokenizer(name: str, text_vocab_size: int) -> TextTokenizer:
    tokenizer: TextTokenizer = ByteTokenizer() if name == "byte" else HFTokenizer(name)
    if tokenizer.vocab_size > text_vocab_size:
        raise UsageError(
            f"tokenizer '{name}' has {tokenizer.vocab_size} ids but the model's text vocabulary "
            f"holds {text_vocab_size}; use a tokenizer that fits or a config with a larger text_vocab_size"
        )
    return tokenizer


def encode_prompt(tokenizer: TextTokenizer, text: str, max_tokens: int) -> list[int]:
    """Ids of a prompt, cut to `max_tokens` (the beginning is kept)."""
    return tokenizer.encode(text)[:max_tokens]
