"""Model handling: base-model resolution, loading, prompts, generation, prefix KV cache, adapters, merging."""
