"""Data handling: readers for every input format, text normalisation and PII masking, tiers, dedup."""
