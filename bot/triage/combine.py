"""Rules and model together: the final triage of an owner's message.

combine() is a pure function of the rules' Classification and the model's Prediction (the model having seen
the rules' verdict as features, see model.rule_hints). The policy, measured with bench/classifier_eval.py:

* Emergencies are recall-first. A rule hazard hit (`rule:` reason at emergency) stays an emergency and keeps
  its explanation; otherwise the model's emergency probability at or above `emergency_threshold` makes it one,
  with a reason like `model:emergency 0.93 (煤气味, 头晕)`.
* Below the threshold but at or above `unsure_low` the message is `unsure`: the desk should ask a safety
  question ("is anyone in danger right now?") rather than trust the label.
* Kind, category and the non-emergency urgency come from the model (which already weighs the rules' verdict;
  when a rule hazard decides the urgency, the rule's kind and category win unless it named none ("other"));
  an emergency the model does not confirm falls to its most likely non-emergency urgency.

Thresholds default to the ones stored in the model file (chosen by leave-one-source-out cross-validation
when it was trained).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# The one place this package takes the rule classifier's types from (they may move; change it here only).
from bot.triage.classifier import Classification, Classifier, get_classifier

from bot.triage.model import Prediction, TriageModel, get_model

URGENCY_ORDER = {"low": 0, "normal": 1, "high": 2, "emergency": 3}
DEFAULT_EMERGENCY_THRESHOLD = 0.35
DEFAULT_UNSURE_LOW = 0.15


@dataclass
class Triage:
    kind: str
    category: str
    urgency: str
    reasons: list[str] = field(default_factory=list)
    emergency_probability: float = 0.0
    unsure: bool = False
    model_version: str = ""

    def as_dict(self) -> dict:
        """The same keys as Classification.as_dict(): the classify CLI's contract."""
        return {"kind": self.kind, "category": self.category, "urgency": self.urgency, "reasons": self.reasons}

    @property
    def is_emergency(self) -> bool:
        return self.urgency == "emergency"


def _rule_hazard(rules: Classification) -> bool:
    return rules.urgency == "emergency" and any(r.startswith("rule:") for r in rules.reasons)


def combine(rules: Classification, pred: Prediction, *, emergency_threshold: float | None = None,
            unsure_low: float | None = None) -> Triage:
    """The final labels of one message from the rules' and the model's view of it (see the module docstring)."""
    hi = emergency_threshold if emergency_threshold is not None else \
        pred.thresholds.get("emergency", DEFAULT_EMERGENCY_THRESHOLD)
    lo = unsure_low if unsure_low is not None else pred.thresholds.get("unsure_low", DEFAULT_UNSURE_LOW)
    p = pred.emergency_probability
    kind, category = pred.kind, pred.category
    reasons: list[str] = []

    if _rule_hazard(rules):
        urgency = "emergency"
        reasons = [r for r in rules.reasons if r.startswith("rule:")]
        if rules.category != "other":
            # A hazard rule that names what is broken decides what the ticket is about.
            kind, category = rules.kind, rules.category
    elif p >= hi:
        urgency = "emergency"
        words = pred.evidence("emergency", "emergency", k=3)
        reasons = [f"model:emergency {p:.2f}" + (f" ({', '.join(words)})" if words else "")]
    else:
        ranked = sorted((u for u in pred.probs["urgency"] if u != "emergency"),
                        key=lambda u: -pred.probs["urgency"][u])
        urgency = pred.urgency if pred.urgency != "emergency" else ranked[0]
        if (kind, category, urgency) == (rules.kind, rules.category, rules.urgency):
            reasons = list(rules.reasons)
        else:
            words = pred.evidence("urgency", urgency, k=3)
            reasons = [f"model:{kind}/{category}/{urgency} {pred.probs['urgency'][urgency]:.2f}"
                       + (f" ({', '.join(words)})" if words else "")]
            reasons += [f"rules said {rules.kind}/{rules.category}/{rules.urgency}: " + "; ".join(rules.reasons)]
    unsure = urgency != "emergency" and lo <= p < hi
    if unsure:
        reasons.append(f"unsure:emergency {p:.2f}, ask a safety question")
    return Triage(kind, category, urgency, reasons, round(p, 4), unsure, pred.version)


def triage(text: str, classifier: Classifier | None = None, model: TriageModel | None = None,
           **thresholds: float) -> Triage:
    """Classify one message with the rules and the model (the shipped ones unless given) and combine them."""
    rules = (classifier or get_classifier()).classify(text)
    m = model or get_model()
    return combine(rules, m.predict(text, rules=rules), **thresholds)


class Triager:
    """What the desk classifies with: the rules (with the estate's own additions) and, unless switched off, the
    learned model beside them. `classify(text)` answers like the rules' Classifier does."""

    def __init__(self, classifier: Classifier | None = None, model: TriageModel | None = None,
                 use_model: bool = True):
        self.classifier = classifier or get_classifier()
        self.model = (model or get_model()) if use_model else None

    def classify(self, text: str) -> Triage | Classification:
        rules = self.classifier.classify(text)
        if self.model is None or not says_something(text):
            return rules
        return combine(rules, self.model.predict(text, rules=rules))


_WORDS = re.compile(r"[\u4e00-\u9fff]|[A-Za-z]{2,}")


def says_something(text: str) -> bool:
    """Whether a text has words for the model to weigh: at least three Chinese characters or two Latin words.
    Numbers, unit labels, phone numbers and one-word answers ("是", "2", "1-2-801") are the flows' business, and
    the model, trained on owners' reports, has nothing to say about them."""
    found = _WORDS.findall(text or "")
    return sum(len(w) == 1 for w in found) >= 3 or sum(len(w) > 1 for w in found) >= 2
