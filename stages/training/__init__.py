"""LoRA training internals: data encoding, length-grouped batches, answer-only loss, LoRA setup, checkpoints."""
