"""GGUF export for llama.cpp / Ollama (the stage entry point is stages/export.py)."""
