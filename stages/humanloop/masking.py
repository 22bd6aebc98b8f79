"""The one PII mask (``stages.safety.pii.mask_pii``) for everything humanloop stores: questions,
answers, corrections, comments, verdicts."""
from __future__ import annotations

from stages.data.text import normalize
from stages.safety.pii import mask_pii


def mask(text: str) -> str:
    return mask_pii(text)


def clean_user_text(text: str) -> str:
    """What a person typed (correction, comment) as stored: normalised, then PII-masked."""
    return mask(normalize(text))
