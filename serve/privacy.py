"""The one path from client text to anything the server stores, logs or echoes: normalise, then
mask — ``stages.safety.pii.mask_pii_counts``, the pipeline's one masking function
(``stages.safety.pii.mask_pii``) with counts, which runs ``stages.data.text.normalize`` first.
Model input, cache keys, the audit log's question and error fields, and error messages that must
mention client-supplied text all go through here."""
from __future__ import annotations

from stages.safety.pii import mask_pii_counts

ECHO_CHARS = 40


def clean(text: str) -> tuple[str, dict[str, int]]:
    """Normalised, PII-masked text and the count of each PII kind masked."""
    return mask_pii_counts(text)


def masked(text: str) -> str:
    return clean(text)[0]


def echo(value, limit: int = ECHO_CHARS) -> str:
    """A client-supplied value (a content-part type, a field name) as it may appear in an error
    message or log: normalised, masked, shortened and quoted."""
    text = masked(str(value))
    return repr(text[:limit] + ("…" if len(text) > limit else ""))
