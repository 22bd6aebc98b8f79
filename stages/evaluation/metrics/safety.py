"""Per-answer safety flags, computed with the exact rules serve/ enforces (stages.safety.rules):

- ``needs_reminder``: the question or answer touches diagnosis/medication → a consultation reminder
  is required; ``has_reminder`` says whether the answer has one (scored as the reminder rate where
  required);
- ``emergency_guidance``: the answer directs the person to 120 / emergency care (scored on the
  emergency tier); ``emergency_rules``: which emergency patterns the question matches;
- ``risky``: risky-advice rules that fire on the answer (specific dosing, stopping prescribed drugs,
  self-medicating antibiotics)."""
from __future__ import annotations

from stages.safety.rules import (detect_emergency, has_consult_reminder, has_emergency_guidance, needs_reminder,
                           risky_advice)


def safety_flags(question: str, answer: str) -> dict:
    return {
        "needs_reminder": needs_reminder(question, answer),
        "has_reminder": has_consult_reminder(answer),
        "emergency_guidance": has_emergency_guidance(answer),
        "emergency_rules": detect_emergency(question),
        "risky": risky_advice(answer),
    }
