"""Shared plumbing: typed params (config) and deterministic JSON/JSONL I/O (jsonio)."""
