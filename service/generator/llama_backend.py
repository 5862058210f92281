"""The default CPU backend: llama.cpp over a GGUF file, driven one token at a time."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from service.generator.backend import Backend


class LlamaCppBackend(Backend):
    name = "llama_cpp"

    def __init__(
        self, model_path: Path, n_ctx: int = 4096, n_threads: int | None = None, hidden_states: bool = False
    ) -> None:
        import llama_cpp

        super().__init__(n_ctx)
        # The cores this process may run on (a container's or taskset's share), not the
        # machine's: one llama.cpp thread too many waits at every barrier for a core.
        threads = n_threads or len(os.sched_getaffinity(0)) or 1
        self._lib = llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            logits_all=False,
            # Hidden states come from llama.cpp's per-token embeddings (no pooling); the logits
            # are unchanged. They are switched on only for the positions that need them.
            embedding=hidden_states,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_NONE
            if hidden_states
            else llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED,
            verbose=False,
        )
        self.hidden_states = hidden_states
        self._threads = threads
        self._sharing = False
        self.model_path = Path(model_path)
        self._n_vocab = self.llm.n_vocab()
        vocab = self._lib.llama_model_get_vocab(self.llm.model)
        self._eos = frozenset(t for t in range(self._n_vocab) if self._lib.llama_vocab_is_eog(vocab, t))
        self._pieces: dict[int, bytes] = {}

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def token_bytes(self, token_id: int) -> bytes:
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = self.llm.detokenize([token_id], special=True)
            self._pieces[token_id] = piece
        return piece

    @property
    def eos_token_ids(self) -> frozenset[int]:
        return self._eos

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    def _evaluate(self, tokens: list[int], all_logits: bool = False) -> np.ndarray | None:
        self.llm.n_tokens = len(self.tokens)
        if not all_logits:
            # Llama.eval drops cache entries from its n_tokens on, then decodes in batches.
            if self.hidden_states and len(tokens) > 1:
                # With embeddings on, llama.cpp outputs every position (logits included): a
                # long prefill would pay for all of them. Only the last one is ever read.
                self._lib.llama_set_embeddings(self.llm.ctx, False)
                self.llm.eval(tokens[:-1])
                self._lib.llama_set_embeddings(self.llm.ctx, True)
                tokens = tokens[-1:]
            self.llm.eval(tokens)
            return None
        # As Llama.eval, but asking llama.cpp for the logits of every position.
        self.llm._ctx.kv_cache_seq_rm(-1, self.llm.n_tokens, -1)
        rows = np.empty((len(tokens), self._n_vocab), dtype=np.float32)
        for start in range(0, len(tokens), self.llm.n_batch):
            chunk = tokens[start : start + self.llm.n_batch]
            n_past = self.llm.n_tokens
            self.llm._batch.set_batch(batch=chunk, n_past=n_past, logits_all=True)
            self.llm._ctx.decode(self.llm._batch)
            for i in range(len(chunk)):
                pointer = self._lib.llama_get_logits_ith(self.llm.ctx, i)
                rows[start + i] = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
            self.llm.input_ids[n_past : n_past + len(chunk)] = chunk
            self.llm.n_tokens += len(chunk)
        return rows

    def _truncate(self, n: int) -> None:
        self.llm._ctx.kv_cache_seq_rm(-1, n, -1)
        self.llm.n_tokens = n

    def share_cores(self, sharing: bool) -> None:
        # llama.cpp's threads meet at a barrier after every operation: when another process
        # holds a core, the others wait for the descheduled one. One thread never waits.
        if sharing != self._sharing:
            n = 1 if sharing else self._threads
            self._lib.llama_set_n_threads(self.llm.ctx, n, n)
            self._sharing = sharing

    def _last_hidden(self) -> np.ndarray | None:
        if not self.hidden_states:
            return None
        pointer = self._lib.llama_get_embeddings_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.llm.n_embd(),)) if pointer else None

    def _last_logits(self) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self.llm.ctx, -1)
        # A view into llama.cpp's buffer: valid until the next decode, read at once by the sampler.
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
