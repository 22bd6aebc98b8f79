"""The served pre-check (before the model): triage first, then prompt injection and out-of-scope.
Emergencies and self-harm get their fixed reply even when the model is down."""
from __future__ import annotations

from dataclasses import dataclass, field

from stages.safety.rules import INJECTION_REPLY, OUT_OF_SCOPE, OUT_OF_SCOPE_REPLY
from stages.safety.triage import TriageResult, Triager


@dataclass
class PreCheck:
    action: str                      # "pass" | "emergency" | "self_harm" | "injection" | "out_of_scope"
    rules: list[str] = field(default_factory=list)
    reply: str | None = None         # immediate reply when action != "pass"
    triage: TriageResult | None = None
    pointer: bool = False            # pass, but urgent enough for the 120 pointer after the answer (postcheck)
    gray: bool = False               # pass, but the injection classifier's score is in its gray zone (postcheck)


def precheck(question: str, triager: Triager) -> PreCheck:
    """``triager``: from ``load_triager`` (loaded once per process)."""
    t = triager(question)
    if t.flagged:
        reply, sim = triager.reply(question, t)
        rules = t.rule_names() + (["reply:authored_steps"] if sim > 0 else [])
        return PreCheck(t.label, rules, reply, t)
    p_injection = triager.injection_proba(question)          # once: the refusal and the gray zone both read it
    if triager.is_injection(question, p_injection):
        return PreCheck("injection", ["injection"], INJECTION_REPLY, t)
    if OUT_OF_SCOPE.search(question):
        return PreCheck("out_of_scope", ["out_of_scope"], OUT_OF_SCOPE_REPLY, t)
    return PreCheck("pass", [], None, t, pointer=triager.wants_pointer(t),
                    gray=triager.injection_gray(question, p_injection))
