"""The Hugging Face backend: any causal LM by id or folder (GPU when present), or a GGUF file.

A GGUF file is dequantized to float32 on load, which is slow, so the converted weights are
saved once under the data directory and loaded from there afterwards.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from service.generator.backend import Backend


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of the byte-level BPE alphabet (GPT-2's printable stand-ins for raw bytes)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def converted_gguf_dir(cache_root: Path, gguf_path: Path) -> Path:
    """Where the float weights converted from one GGUF file are kept (keyed by its size and name)."""
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    return cache_root / f"{gguf_path.stem}-{key[:12]}"


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(
        self,
        model: str | Path,
        *,
        gguf_file: str | None = None,
        cache_root: Path | None = None,
        device: str = "auto",
        n_ctx: int = 4096,
        hidden_states: bool = False,
    ) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

        super().__init__(n_ctx)
        self._torch = torch
        self._new_cache = DynamicCache
        # transformers 5 renamed `past_key_values` to `cache` and made crop() take a negative count.
        self._v5 = int(transformers.__version__.split(".")[0]) >= 5
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        dtype = torch.float32 if device == "cpu" else torch.bfloat16

        source: str | Path = model
        load_kwargs: dict = {}
        if gguf_file is not None:
            gguf_path = Path(model) / gguf_file
            converted = converted_gguf_dir(cache_root or Path("index_data") / "hf_cache", gguf_path)
            if (converted / "config.json").exists():
                source = converted
            else:
                load_kwargs["gguf_file"] = gguf_file
        self.tokenizer = AutoTokenizer.from_pretrained(source, **load_kwargs)
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **load_kwargs)
        if gguf_file is not None and source == model:
            tmp = converted.with_name(converted.name + ".partial")
            # The weights are already dequantized floats; drop the GGUF marker so they save.
            self.model.hf_quantizer = None
            if hasattr(self.model.config, "quantization_config"):
                del self.model.config.quantization_config
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            tmp.rename(converted)  # a half-written conversion is never picked up
        self.model.to(device).eval()
        self._cache = DynamicCache()
        self._logits: np.ndarray | None = None
        self.hidden_states = hidden_states
        self._hidden: np.ndarray | None = None

        self._byte_of = _unicode_to_byte()
        self._added = {t.content for t in self.tokenizer.added_tokens_decoder.values()}
        eos = {self.tokenizer.eos_token_id}
        for text in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
            tid = self.tokenizer.convert_tokens_to_ids(text)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id:
                eos.add(tid)
        self._eos = frozenset(t for t in eos if t is not None)

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=not special)["input_ids"]

    def token_bytes(self, token_id: int) -> bytes:
        token = self.tokenizer.convert_ids_to_tokens(token_id)
        if token in self._added:
            return token.encode("utf-8")
        try:
            return bytes(self._byte_of[c] for c in token)
        except KeyError:  # not a byte-level vocabulary (e.g. SentencePiece): decode normally
            return self.tokenizer.decode([token_id]).encode("utf-8")

    @property
    def eos_token_ids(self) -> frozenset[int]:
        return self._eos

    @property
    def n_vocab(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def _evaluate(self, tokens: list[int], all_logits: bool = False) -> np.ndarray | None:
        torch = self._torch
        start = len(self.tokens)
        ids = torch.tensor([tokens], device=self.device)
        positions = torch.arange(start, start + len(tokens), device=self.device)
        with torch.inference_mode():
            cache_arg = {"cache" if self._v5 else "past_key_values": self._cache}
            out = self.model(
                input_ids=ids,
                **cache_arg,
                use_cache=True,
                cache_position=positions,
                position_ids=positions.unsqueeze(0),
                logits_to_keep=0 if all_logits else 1,
                output_hidden_states=self.hidden_states,
            )
        self._cache = getattr(out, "cache", None) or out.past_key_values
        self._logits = out.logits[0, -1].float().cpu().numpy()
        if self.hidden_states:
            # The last entry is taken after the final norm, as llama.cpp's embeddings are (the
            # input to the LM head): both backends give the same vector (cosine 0.999).
            self._hidden = out.hidden_states[-1][0, -1].float().cpu().numpy()
        return out.logits[0].float().cpu().numpy() if all_logits else None

    def _truncate(self, n: int) -> None:
        if n == 0:
            self._cache = self._new_cache()
        elif self._v5:
            self._cache.crop(n - len(self.tokens))
        else:
            self._cache.crop(n)
        self._logits = None
        self._hidden = None

    def _last_hidden(self) -> np.ndarray | None:
        return self._hidden

    def _last_logits(self) -> np.ndarray:
        assert self._logits is not None
        return self._logits
