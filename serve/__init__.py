"""LitServe app serving the MedQA model: OpenAI-compatible chat API, /predict, safety filter,
answer cache, API-key auth, PII-masked audit log and a static chat page. See serve/README.md."""
