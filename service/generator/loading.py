"""Build the configured backend from Settings."""

from __future__ import annotations

from service.generator.backend import Backend
from service.generator.model_files import default_gguf_path
from service.settings import Settings


def load_backend(settings: Settings, hidden_states: bool = False) -> Backend:
    """With hidden_states, every step carries the model's final hidden state (for the learned unit)."""
    if settings.model.backend in ("llama_cpp", "remote"):  # remote: the local model only tokenizes
        from service.generator.llama_backend import LlamaCppBackend

        path = settings.model.model_path or default_gguf_path()
        return LlamaCppBackend(
            path, n_ctx=settings.model.n_ctx, n_threads=settings.model.n_threads, hidden_states=hidden_states
        )

    from service.generator.transformers_backend import TransformersBackend

    cache_root = settings.data_dir / "hf_cache"
    if settings.model.hf_model:
        return TransformersBackend(
            settings.model.hf_model,
            cache_root=cache_root,
            device=settings.model.hf_device,
            n_ctx=settings.model.n_ctx,
            hidden_states=hidden_states,
        )
    gguf = settings.model.model_path or default_gguf_path()
    return TransformersBackend(
        gguf.parent,
        gguf_file=gguf.name,
        cache_root=cache_root,
        device=settings.model.hf_device,
        n_ctx=settings.model.n_ctx,
        hidden_states=hidden_states,
    )
