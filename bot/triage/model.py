"""The learned triage model at run time: a linear model over character n-grams, standard library only.

A message becomes a sparse vector: character 1-4 grams of its normalised text (NFKC, lower case, digits
folded to 0, one space) plus word 1-2 grams of its Latin words, each weighted by sublinear term frequency
(1 + ln count) times the n-gram's idf, the whole vector L2-normalised. Only n-grams in the model's vocabulary
count. Each head (kind, category, urgency: softmax; emergency: a binary sigmoid) is a bias plus, per n-gram,
its non-zero weights. train.py writes the file; nothing here needs numpy or scikit-learn.

Cost: `python -m bot.triage.model --bench ../shared/data/owner_messages_dev.jsonl` times `predict` (without
rule hints) on every message of a file, after one warm-up pass, with time.perf_counter_ns, and prints the median
and 90th percentile. On the 2-core development machine, while other test suites were running on it (load
average about 6), the median over the 120 dev messages was about 0.4 ms; the shipped file (~1.3 MB gzip, ~18k
n-grams) takes about half a second to load, once per process.
"""
from __future__ import annotations

from typing import Any

import gzip
import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATH = Path(__file__).with_name("model.json.gz")
FORMAT = "propdesk-triage/1"
HEADS = ("kind", "category", "urgency")
WORD_PREFIX = "w\t"  # word features; normalised text never contains a tab, so no character n-gram looks like one
HINT_PREFIX = "h\t"  # what the rules said (see rule_hints): a feature of fixed value, outside the L2 norm

_SPACE = re.compile(r"\s+")
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"[a-z][a-z0-9']*")


def normalize(text: str, max_chars: int = 2000) -> str:
    """NFKC, lower case, straight quotes, digits folded to 0, one space: the text every n-gram is taken from."""
    text = unicodedata.normalize("NFKC", (text or "")[: max_chars * 2]).lower()
    text = text.replace("’", "'").replace("‘", "'")
    text = _DIGIT.sub("0", text)
    return _SPACE.sub(" ", text).strip()[:max_chars]


def ngrams(text: str, char_n: tuple[int, int] = (1, 4), word_n: tuple[int, int] = (1, 2),
           max_chars: int = 2000) -> dict[str, int]:
    """Raw n-gram counts of a message: character n-grams (none that is only a space) and Latin word n-grams."""
    t = normalize(text, max_chars)
    counts: dict[str, int] = {}
    lo, hi = char_n
    n = len(t)
    for size in range(lo, hi + 1):
        for i in range(n - size + 1):
            g = t[i:i + size]
            if g == " " * size:
                continue
            counts[g] = counts.get(g, 0) + 1
    words = _WORD.findall(t)
    wlo, whi = word_n
    for size in range(wlo, whi + 1):
        for i in range(len(words) - size + 1):
            g = WORD_PREFIX + " ".join(words[i:i + size])
            counts[g] = counts.get(g, 0) + 1
    return counts


def vectorize(counts: dict[str, int], idf: dict[str, float]) -> dict[str, float]:
    """Sublinear tf times idf over the n-grams the vocabulary knows, L2-normalised."""
    vec = {g: (1.0 + math.log(c)) * idf[g] for g, c in counts.items() if g in idf and g[:2] != HINT_PREFIX}
    norm = math.sqrt(sum(v * v for v in vec.values()))
    if norm > 0:
        for g in vec:
            vec[g] /= norm
    return vec


def rule_hints(classification: Any) -> list[str]:
    """The rules' verdict as model features: its urgency, kind and category, and the tag of each reason
    ("rule:gas_smell", "past", "scheduled", "cue:fee+question", "keywords", ...). Takes anything with
    kind/category/urgency/reasons attributes (bot.triage.classifier.Classification)."""
    if classification is None:
        return []
    out = [f"u={classification.urgency}", f"k={classification.kind}", f"c={classification.category}"]
    for reason in classification.reasons:
        tag = reason.split(" ", 1)[0]
        if tag.startswith(("past:", "scheduled:", "keywords:", "default:")):
            tag = tag.split(":", 1)[0]
        elif tag == "most":
            tag = "several_issues"
        out.append("r=" + tag)
    return out


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def display(gram: str) -> str:
    """An n-gram as a person reads it in a reason: word features without their marker, no outer spaces."""
    if gram.startswith(HINT_PREFIX):
        return "rules:" + gram[len(HINT_PREFIX):]
    return gram[len(WORD_PREFIX):] if gram.startswith(WORD_PREFIX) else gram.strip()


@dataclass
class Prediction:
    kind: str
    category: str
    urgency: str
    probs: dict[str, dict[str, float]]
    emergency_probability: float
    version: str
    thresholds: dict[str, float] = field(default_factory=dict)
    _vector: dict[str, float] = field(default_factory=dict, repr=False)
    _model: "TriageModel | None" = field(default=None, repr=False)

    def evidence(self, head: str, label: str, k: int = 3, hints: bool = False) -> list[str]:
        """The k n-grams of this message that pushed `head` most towards `label` (largest positive
        contribution first). An n-gram inside one already given, or containing one, is skipped, so
        "煤气味" is not followed by "煤气" and "气味". The rules' hints count only with hints=True."""
        if self._model is None:
            return []
        contributions = self._model.contributions(self._vector, head, label)
        chosen: list[str] = []
        for gram, value in sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0])):
            if value <= 0 or len(chosen) >= k:
                break
            if gram.startswith(HINT_PREFIX) and not hints:
                continue
            shown = display(gram)
            if not shown or any(shown in c or c in shown for c in chosen):
                continue
            chosen.append(shown)
        return chosen


class TriageModel:
    def __init__(self, data: dict, version: str = ""):
        if data.get("format") != FORMAT:
            raise ValueError(f"not a triage model file (format {data.get('format')!r}, want {FORMAT!r})")
        cfg = data["config"]
        self.char_n = tuple(cfg["char_ngrams"])
        self.word_n = tuple(cfg["word_ngrams"])
        self.max_chars = int(cfg.get("max_chars", 2000))
        self.head_order: list[str] = list(data["head_order"])
        self.heads: dict[str, dict] = data["heads"]
        self.labels = {h: list(self.heads[h]["labels"]) for h in self.head_order}
        self.thresholds: dict[str, float] = dict(data.get("thresholds", {}))
        self.meta: dict = data.get("meta", {})
        self.version = version
        self.uses_hints = bool(cfg.get("hints", False))
        self.idf: dict[str, float] = {}
        # n-gram -> flat [head index, class index, weight, head index, class index, weight, ...]
        self.weights: dict[str, list] = {}
        for gram, (idf, flat) in data["features"].items():
            self.idf[gram] = idf
            self.weights[gram] = flat

    @classmethod
    def load(cls, path: str | Path | None = None) -> "TriageModel":
        """Read a model file (gzip-compressed JSON, or plain JSON); the default is the one shipped beside this
        module. `version` is the first 12 hex digits of the file's sha256."""
        raw = Path(path or DEFAULT_PATH).read_bytes()
        version = hashlib.sha256(raw).hexdigest()[:12]
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        return cls(json.loads(text), version)

    @classmethod
    def from_dict(cls, data: dict) -> "TriageModel":
        """A model straight from train.train()'s result; its version is the hash of its canonical JSON."""
        canon = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return cls(data, hashlib.sha256(canon).hexdigest()[:12])

    def vector(self, text: str, hints: list[str] | tuple = ()) -> dict[str, float]:
        vec = vectorize(ngrams(text, self.char_n, self.word_n, self.max_chars), self.idf)
        for h in hints:
            g = HINT_PREFIX + h
            if g in self.idf:
                vec[g] = self.idf[g]  # a hint's "idf" is its fixed value
        return vec

    def scores(self, vec: dict[str, float]) -> list[list[float]]:
        out = [list(self.heads[h]["bias"]) for h in self.head_order]
        weights = self.weights
        for gram, x in vec.items():
            flat = weights[gram]
            for i in range(0, len(flat), 3):
                out[flat[i]][flat[i + 1]] += x * flat[i + 2]
        return out

    def predict(self, text: str, rules: Any = None) -> Prediction:
        """Labels and probabilities for one message. `rules`: the rule classifier's Classification of the same
        text, if the model was trained with rule hints (meta.hints); without it those features are absent."""
        vec = self.vector(text, rule_hints(rules) if self.uses_hints else ())
        probs: dict[str, dict[str, float]] = {}
        for h, s in zip(self.head_order, self.scores(vec), strict=False):
            labels = self.labels[h]
            if self.heads[h]["type"] == "sigmoid":
                probs[h] = {labels[0]: _sigmoid(s[0])}
            else:
                probs[h] = dict(zip(labels, _softmax(s), strict=False))
        best = {h: max(probs[h], key=probs[h].__getitem__) for h in HEADS}
        if "emergency" in probs:
            p_emergency = probs["emergency"]["emergency"]
        else:
            p_emergency = probs["urgency"].get("emergency", 0.0)
        return Prediction(best["kind"], best["category"], best["urgency"], probs, p_emergency, self.version,
                          self.thresholds, vec, self)

    def contributions(self, vec: dict[str, float], head: str, label: str) -> dict[str, float]:
        """x_j * w_j for every n-gram j of the message, towards `label` of `head` (softmax heads: relative to
        nothing; the softmax's other classes are not subtracted)."""
        h = self.head_order.index(head)
        c = self.labels[head].index(label)
        out = {}
        for gram, x in vec.items():
            flat = self.weights[gram]
            for i in range(0, len(flat), 3):
                if flat[i] == h and flat[i + 1] == c:
                    out[gram] = x * flat[i + 2]
                    break
        return out


_shipped: TriageModel | None = None


def get_model() -> TriageModel:
    """The shipped model, loaded once per process."""
    global _shipped
    if _shipped is None:
        _shipped = TriageModel.load()
    return _shipped


def bench(path: str, model: TriageModel | None = None) -> dict:
    """Median and 90th percentile of predict() over the messages of a JSON-lines file, in microseconds."""
    import statistics
    import time
    model = model or get_model()
    texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8") if line.strip()]
    for t in texts:
        model.predict(t)
    times = []
    for t in texts:
        start = time.perf_counter_ns()
        model.predict(t)
        times.append((time.perf_counter_ns() - start) / 1000)
    times.sort()
    return {"n": len(texts), "median_us": round(statistics.median(times), 1),
            "p90_us": round(times[int(0.9 * (len(times) - 1))], 1)}


if __name__ == "__main__":
    import sys
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--bench" in sys.argv:
        print(json.dumps(bench(args[0])))
    else:
        m = get_model()
        for text in args or [line.rstrip("\n") for line in sys.stdin]:
            p = m.predict(text)
            print(json.dumps({"text": text, "kind": p.kind, "category": p.category, "urgency": p.urgency,
                              "emergency_probability": round(p.emergency_probability, 3),
                              "evidence": p.evidence("urgency", p.urgency)}, ensure_ascii=False))
