"""Rule-based classifier: kind, category and urgency of an owner's message, with the rules that decided.

Rules and keywords live in config/classifier.toml (plus an optional estate file), so an estate can extend them
without code. The message is split into clauses; each clause is labelled on its own (so a fee question does not
hide a power cut in the next sentence) and the most urgent clause labels the message.
"""
from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from config import CONFIG_DIR

URGENCY_ORDER = {"low": 0, "normal": 1, "high": 2, "emergency": 3}
REPAIR_CATEGORIES = {"water", "electrical", "gas", "lift", "doors_windows", "building", "public_facility"}
COMPLAINT_CATEGORIES = {"noise", "sanitation", "security", "neighbor", "service", "parking"}


@dataclass
class Classification:
    kind: str
    category: str
    urgency: str
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "category": self.category, "urgency": self.urgency, "reasons": self.reasons}

    @property
    def is_emergency(self) -> bool:
        return self.urgency == "emergency"


@dataclass
class Rule:
    name: str
    urgency: str
    patterns: list[re.Pattern]
    category: str | None = None
    kind: str | None = None


def _compile(patterns: list[str]) -> list[re.Pattern]:
    return [re.compile(p) for p in patterns]


def _any_of(patterns: list[re.Pattern]) -> re.Pattern:
    """One regex that matches where any of the patterns does: a cheap first look before trying each."""
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns) or r"(?!x)x")


def normalize(text: str) -> str:
    """Half-width, lower-case, one space: the form every pattern is written against."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("’", "'").replace("‘", "'")
    return re.sub(r"[ \t]+", " ", text)


class Classifier:
    def __init__(self, rules: dict):
        t = rules["text"]
        self.figurative = _compile(t["figurative"])
        self.negations = [normalize(n) for n in t["negation_before"]]
        self.window = int(t.get("window", 4))
        self.clause_split = re.compile(t["clause_split"])
        self.cues = {name: _any_of(_compile(pats)) for name, pats in rules["cues"].items()}
        self.categories = {
            name: [(re.compile(p), float(w)) for p, w in words.items()]
            for name, words in rules["categories"].items()
        }
        self.category_any = {name: _any_of([p for p, _ in words]) for name, words in self.categories.items()}
        self.rules = [
            Rule(r["name"], r["urgency"], _compile(r["any"]), r.get("category"), r.get("kind"))
            for r in rules["rules"]
        ]
        self.rule_any = [_any_of(rule.patterns) for rule in self.rules]

    # -- building blocks -------------------------------------------------------------------------------------
    def _has(self, cue: str, text: str) -> bool:
        pattern = self.cues.get(cue)
        return bool(pattern and pattern.search(text))

    def _negated(self, text: str, start: int) -> bool:
        """True when a negation ("没", "不是", "no ") ends at most `window` characters before the match."""
        # "是不是没气了" asks; it does not deny.
        before = text[max(0, start - self.window - 8):start].replace("是不是", "")
        for neg in self.negations:
            idx = before.rfind(neg)
            if idx < 0:
                continue
            if neg.strip() != neg and idx > 0 and before[idx - 1].isalpha():
                continue  # "piano " is not "no "
            if len(before) - (idx + len(neg)) <= self.window:
                return True
        return False

    def _rule_hits(self, clause: str) -> list[Rule]:
        hits = []
        for rule, any_pattern in zip(self.rules, self.rule_any, strict=False):
            if not any_pattern.search(clause):
                continue
            for pat in rule.patterns:
                if any(not self._negated(clause, m.start()) for m in pat.finditer(clause)):
                    hits.append(rule)
                    break
        return hits

    def _category(self, text: str) -> tuple[str, float]:
        best, best_score = "other", 0.0
        for name, words in self.categories.items():
            if not self.category_any[name].search(text):
                continue
            # A word said twice counts twice, but no more: repetition is not evidence.
            score = sum(w * min(len(pat.findall(text)), 2) for pat, w in words)
            if score > best_score:
                best, best_score = name, score
        return best, best_score

    # -- one clause ------------------------------------------------------------------------------------------
    def _clause(self, clause: str) -> Classification | None:
        category, score = self._category(clause)
        hits = self._rule_hits(clause)
        fee = self._has("fee", clause)
        question = self._has("question", clause)
        reasons: list[str] = []

        if fee and (question or not hits or self._has("scheduled", clause)) \
                and not self._has("problem", _strip_fee(clause)):
            return Classification("fee", "fee", "low", ["cue:fee" + ("+question" if question else "")])
        if fee and hits and question:
            return Classification("fee", "fee", "low", ["cue:fee+question overrides " + hits[0].name])

        ongoing = self._has("ongoing", clause)
        past_done = self._has("resolved", clause) or (
            self._has("past", clause) and not ongoing and (self._has("thanks", clause) or question))
        if hits and past_done:
            return Classification("inquiry", hits[0].category or category, "low",
                                  [f"past:{hits[0].name} already happened or resolved"])
        if hits and self._has("scheduled", clause) and question:
            return Classification("inquiry", hits[0].category or category, "low",
                                  [f"scheduled:{hits[0].name} is announced, not happening"])
        if hits:
            top = max(hits, key=lambda r: URGENCY_ORDER[r.urgency])
            cat = top.category or (category if score else "other")
            kind = (top.kind if top.category else None) or _kind_for(cat, self._has("broken", clause))
            reasons = [f"rule:{r.name}" for r in hits if r.urgency == top.urgency]
            return Classification(kind, cat, top.urgency, reasons)

        if score == 0 and not fee:
            return None  # nothing to say: an address, a greeting, "help!"
        if fee:
            return Classification("fee", "fee", "low", ["cue:fee"])
        problem = self._has("problem", clause)
        if past_done or ((self._has("thanks", clause) or self._has("suggestion", clause)) and not problem):
            return Classification("inquiry", category, "low", ["cue:thanks/suggestion/resolved"])
        if question and not problem and not ongoing and not self._has("complaint", clause):
            return Classification("inquiry", category, "low", ["cue:question without a problem"])
        if self._has("scheduled", clause) and not problem:
            return Classification("inquiry", category, "low", ["cue:scheduled"])
        kind = "complaint" if self._has("complaint", clause) and category not in REPAIR_CATEGORIES \
            else _kind_for(category, self._has("broken", clause))
        return Classification(kind, category, "normal" if kind != "inquiry" else "low",
                              [f"keywords:{category}"])

    # -- the message -----------------------------------------------------------------------------------------
    def classify(self, text: str) -> Classification:
        norm = normalize(text or "")
        for fig in self.figurative:
            norm = fig.sub(" ", norm)
        clauses = [c.strip() for c in self.clause_split.split(norm) if c and c.strip()]
        labelled = [c for c in (self._clause(cl) for cl in clauses) if c is not None]
        if not labelled:
            whole = self._clause(norm)
            if whole is None:
                return Classification("inquiry", "other", "low", ["default:no rule or keyword matched"])
            labelled = [whole]

        def rank(c: Classification) -> tuple:
            return (URGENCY_ORDER[c.urgency], any(r.startswith("rule:") for r in c.reasons),
                    c.kind in ("repair", "complaint"))

        best = max(labelled, key=rank)  # max keeps the first of equals
        result = Classification(best.kind, best.category, best.urgency, list(best.reasons))
        by_rule = any(r.startswith("rule:") for r in result.reasons)
        if not by_rule and result.kind in ("repair", "complaint") and not self._has("problem", norm) \
                and not self._has("complaint", norm) and not self._has("ongoing", norm) and (
                self._has("suggestion", norm) or self._has("question", norm) or self._has("scheduled", norm)):
            # A question or suggestion with nothing broken and nothing going on anywhere in the message.
            result = Classification("inquiry", result.category, "low", ["cue:question/suggestion, no problem"])
        if not by_rule and result.kind != "fee" and self._has("fee", norm) \
                and not self._has("problem", _strip_fee(norm)):
            # A money question spread over several sentences ("燃气费在哪交？之前去燃气公司交的").
            result = Classification("fee", "fee", "low", ["cue:fee, no problem anywhere"])
        if result.urgency != "emergency":
            if self._has("calm", norm) and URGENCY_ORDER[result.urgency] > URGENCY_ORDER["normal"]:
                result.urgency = "normal"
                result.reasons.append("cue:calm caps urgency at normal")
            if self._has("cosmetic", norm) and result.kind == "repair":
                result.urgency = "low"
                result.reasons.append("cue:cosmetic")
        if len(labelled) > 1:
            result.reasons.append(f"most urgent of {len(labelled)} issues")
        return result


def _strip_fee(clause: str) -> str:
    """The clause without money words, so '电费' does not count as '没电'-style problems."""
    return re.sub(r"(物业|停车|燃气|水|电|管理)费", "", clause)


def _kind_for(category: str, broken: bool) -> str:
    if category == "fee":
        return "fee"
    if category in REPAIR_CATEGORIES:
        return "repair"
    if category == "parking" and broken:
        return "repair"
    if category in COMPLAINT_CATEGORIES:
        return "complaint"
    return "inquiry"


def load_rules(extra_file: str | Path | None = None) -> dict:
    with open(CONFIG_DIR / "classifier.toml", "rb") as fh:
        rules = tomllib.load(fh)
    if extra_file:
        with open(extra_file, "rb") as fh:
            extra = tomllib.load(fh)
        for section in ("text", "cues"):
            for key, value in extra.get(section, {}).items():
                base = rules[section].get(key)
                rules[section][key] = base + value if isinstance(base, list) else value
        for name, words in extra.get("categories", {}).items():
            rules["categories"].setdefault(name, {}).update(words)
        rules["rules"] = extra.get("rules", []) + rules["rules"]
    return rules


_default: Classifier | None = None


def get_classifier(extra_file: str | None = None) -> Classifier:
    global _default
    if extra_file:
        return Classifier(load_rules(extra_file))
    if _default is None:
        _default = Classifier(load_rules())
    return _default
