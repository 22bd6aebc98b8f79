"""Triage = the keyword rules (stages/safety/rules.py) ∪ the learned classifier (models/triage), in ONE
function used by the served pre-check and by evaluate:

    triager = load_triager("models/triage")       # once per process
    r = triager("我妈胸口闷得慌，左胳膊发麻")        # TriageResult(label, score, rules, condition_group)

A question is flagged when the classifier's urgency score (1 − P(none)) reaches the threshold chosen
on validation data by the triage stage, or when an emergency rule fires and the classifier does not rule
it out (score ≥ ``triage.rule_floor``: only a near-certain "none" vetoes a rule, e.g. hyperbole; the
self-harm rule is never vetoed). Questions shorter than ``triage.min_chars`` ("头疼") are decided by the
rules alone: a character n-gram model has too little context there.
Flagged questions are self_harm when the suicide rule fires or the classifier's self-harm share
P(self_harm) / (P(emergency) + P(self_harm)) reaches the share chosen on validation data — never for
accidental wording (误服, 不小心 …) without the suicide rule; otherwise emergency. ``load_triager(None)`` is the explicit rules-only mode (serve
``--rules-only-triage``); a missing model directory is an error, never a silent fallback."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from stages.safety.injection import detect_injection
from stages.safety.injection_model import InjectionModel
from stages.safety.injection_probe import InjectionProbe
from stages.safety.normalize import match_text
from stages.safety.replies import SELF_HARM_REPLY, ReplyIndex, emergency_reply
from stages.safety.rules import SELF_HARM_RULES, emergency_hits, happening_now, rule_label
from stages.safety.triage_model import LABELS, META_FILE, TriageModel

# condition group named by a rule when the classifier is absent or gives none
RULE_GROUPS = {"chest_pain": "cardiac", "cardiac_arrest": "cardiac", "breathing": "respiratory",
               "metabolic_crisis": "metabolic", "unconscious": "neuro", "bleeding": "bleeding",
               "poisoning": "poisoning", "suicide": "self_harm", "stroke": "stroke", "seizure": "neuro",
               "anaphylaxis": "allergy", "trauma": "trauma", "severe_symptom": "general",
               "vital_signs": "cardiac", "high_fever_infant": "paediatric", "dying": "general",
               "amputation": "trauma", "adrenaline_used": "allergy", "burn": "burns", "head_injury_anticoagulated": "trauma",
               "english_alarm": "general"}
# rules specific enough that the classifier's low urgency does not veto them (session 22: a severed finger at
# urgency 0.07, an adrenaline pen already used at 0.06, a head bump on two antiplatelets at 0.13, a child's whole
# palm blistered by an iron at 0.26)
NEVER_VETOED = frozenset({"adrenaline_used", "amputation", "burn", "head_injury_anticoagulated"})


# an accident is not self-harm: "孩子误服了农药", "不小心喝了一口消毒水"
_ACCIDENTAL = re.compile(r"误服|误食|误喝|误吞|误吃|不小心|不注意|没注意|以为是")


@dataclass(frozen=True)
class TriageResult:
    label: str                                  # none | emergency | self_harm
    score: float                                # classifier urgency 1 − P(none); 0.0 in rules-only mode
    rules: tuple[str, ...] = ()                 # emergency rules that fired
    condition_group: str | None = None
    by_model: bool = False                      # the classifier flagged it (urgency or self-harm threshold)

    @property
    def flagged(self) -> bool:
        return self.label != "none"

    def rule_names(self) -> list[str]:
        """For ``safety.rules`` in responses: which rules fired, the classifier, the condition group."""
        out = [f"{'self_harm' if r in SELF_HARM_RULES else 'emergency'}:{r}" for r in self.rules]
        if self.by_model:
            out.append(f"triage:{self.label}")
        if self.flagged and self.condition_group:
            out.append(f"group:{self.condition_group}")
        return out


def rule_stands(rules, score: float, matched: str, floor: float) -> bool:
    """A keyword rule flags the question unless the classifier is near-certain it is none (urgency <
    ``floor``: hyperbole, education). Never vetoed: self-harm wording, the ``NEVER_VETOED`` rules, and a description
    of something happening now (刚才/突然/正在…: "孩子刚才误服了降压药，有哪些要注意的" is an emergency however it is asked)."""
    return bool(rules) and (score >= floor or bool((SELF_HARM_RULES | NEVER_VETOED) & set(rules))
                            or happening_now(matched))


@dataclass
class Triager:
    model: TriageModel | None                   # None = rules only (explicit)
    replies: ReplyIndex | None = None
    rule_floor: float = 0.0
    reply_min_similarity: float = 1.0
    min_chars: int = 0                          # shorter questions: the rules alone decide (too little context)
    info: dict = field(default_factory=dict)
    injection_model: InjectionModel | None = None   # None = injection rules only
    pointer_floor: float = 1.0                  # unflagged questions at least this urgent get the 120 pointer (post-check)
    injection_gray_floor: float = 1.0           # P(injection) in [this, threshold): an agreeing answer is refused (post-check)
    injection_probe: "InjectionProbe | None" = None  # hidden-state probe (stages/safety/injection_probe.py); None = none

    def injection_proba(self, text: str) -> float | None:
        """The injection classifier's P(injection) for ``text`` (None without one)."""
        return None if self.injection_model is None else float(self.injection_model.proba([text])[0])

    def is_injection(self, text: str, proba: float | None = None) -> bool:
        """Prompt injection: the rules (stages/safety/injection.py), the classifier fitted next to this model
        (``proba``: its ``injection_proba`` when already computed) or the hidden-state probe — the probe last,
        since it runs a language model's first layers."""
        if detect_injection(text):
            return True
        p = self.injection_proba(text) if proba is None else proba
        if p is not None and p >= self.injection_model.threshold:
            return True
        probe = self.injection_probe
        return probe is not None and float(probe.proba([text])[0]) >= probe.threshold

    def injection_gray(self, text: str, proba: float | None = None) -> bool:
        """Not refused by the injection pre-check, but its classifier's P(injection) is at least
        ``injection_gray_floor``: the post-check refuses an answer that starts by agreeing (stages/safety/postcheck.py)."""
        if self.injection_model is None or self.injection_gray_floor >= 1:
            return False
        p = self.injection_proba(text) if proba is None else proba
        return p >= self.injection_gray_floor

    def wants_pointer(self, result: TriageResult) -> bool:
        """Not flagged, but urgent enough (score ≥ ``pointer_floor``) that the model's answer should end with the
        120 / 急诊 pointer when it has none (stages/safety/postcheck.py): the safety net under the threshold."""
        return not result.flagged and self.model is not None and result.score >= self.pointer_floor

    def __call__(self, text: str) -> TriageResult:
        return self.classify_matched(match_text(text))

    def classify_matched(self, m: str, proba=None) -> TriageResult:
        rules = tuple(emergency_hits(m))
        if self.model is None:
            if not rules:
                return TriageResult("none", 0.0)
            label = rule_label(rules)
            return TriageResult(label, 0.0, rules, "self_harm" if label == "self_harm" else RULE_GROUPS[rules[0]])
        p = self.model.probabilities([m], matched=True)[0] if proba is None else proba
        score = float(1.0 - p[0])
        by_model = bool(self.model.flags(p)[0]) and len(m) >= self.min_chars
        if not rule_stands(rules, score, m, self.rule_floor):
            rules = ()
        if not rules and not by_model:
            return TriageResult("none", score)
        share = p[2] / max(p[1] + p[2], 1e-12)
        # flagged by self-harm's own threshold alone (urgency below the common one) → the self-harm reply
        only_self_harm = by_model and score < self.model.threshold
        # the self-harm share only decides when the classifier flagged the question: a question flagged by an
        # emergency rule alone keeps the rule's label (session 22: "过敏性休克一般多久会发作", urgency ~0.05, had a
        # share above self_harm_share)
        self_harm = bool(SELF_HARM_RULES & set(rules)) or (
            by_model and (share >= self.model.self_harm_share or only_self_harm) and not _ACCIDENTAL.search(m))
        label = "self_harm" if self_harm else "emergency"
        if label == "self_harm":
            group = "self_harm"
        else:
            group = self.model.group(m) or (RULE_GROUPS[rules[0]] if rules else None)
        return TriageResult(label, score, rules, group, by_model)

    def classify_many(self, texts: list[str], proba=None) -> list[TriageResult]:
        """Batch form (evaluation): one vectoriser pass for all texts. ``proba`` (n, 3): class probabilities
        computed elsewhere (the triage stage's out-of-fold scores) instead of this model's."""
        matched = [match_text(t) for t in texts]
        if self.model is None:
            return [self.classify_matched(m) for m in matched]
        if proba is None:
            proba = self.model.probabilities(matched, matched=True)
        return [self.classify_matched(m, p) for m, p in zip(matched, proba)]

    def reply(self, text: str, result: TriageResult) -> tuple[str, float]:
        """The fixed reply for a flagged result: (text, similarity of the appended authored answer)."""
        if result.label == "self_harm":
            return SELF_HARM_REPLY, 0.0
        return emergency_reply(match_text(text), result.condition_group, self.replies, self.reply_min_similarity)


def load_triager(model_dir: str | Path | None) -> Triager:
    """The served/evaluated triage. ``None`` → rules only; a path that lacks the model → FileNotFoundError
    with the command that builds it."""
    if model_dir is None:
        return Triager(None, info={"mode": "rules_only"})
    model = TriageModel.load(model_dir)
    meta = json.loads((Path(model_dir) / META_FILE).read_text(encoding="utf-8"))
    injection = InjectionModel.load(model_dir)
    probe = InjectionProbe.load(model_dir)
    return Triager(model, ReplyIndex.load(model_dir), float(meta["rule_floor"]),
                   float(meta["reply_min_similarity"]), int(meta["min_chars"]),
                   info={"mode": "rules+classifier", "kind": model.kind, "threshold": model.threshold,
                         "injection_threshold": injection.threshold,
                         "injection_probe": None if probe is None else {k: probe.meta[k] for k in ("encoder", "layer")}},
                   injection_model=injection, injection_probe=probe,
                   pointer_floor=float(meta.get("pointer_floor", 1.0)),
                   injection_gray_floor=float(meta.get("injection_gray_floor", 1.0)))


__all__ = ["LABELS", "TriageResult", "Triager", "load_triager"]
