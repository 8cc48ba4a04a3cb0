"""Fit the triage model with scikit-learn (the optional `train` extra) and write the file model.py reads.

    pip install -e '.[train]'
    python -m bot.triage.train ../shared/data/owner_messages_dev.jsonl ../shared/data/owner_messages_train.jsonl \
        tests/data/classifier_extra.jsonl tests/data/owner_messages_extra.jsonl -o bot/triage/model.json.gz

Every labelled file is a source; inside owner_messages_train.jsonl the id prefixes t1-, t2-, t3- are three
sources (three writers). With `tune=True` (the default of the command) each head's C and the emergency
thresholds are chosen by leave-one-source-out cross-validation over the rows given, so a held-out test source
is never looked at when the benchmark calls train() on the other sources. Everything is deterministic: fixed
random_state, sorted vocabularies, rounded weights.
"""
from __future__ import annotations

from typing import Any, Sequence

import gzip
import json
import math
from pathlib import Path

from bot.triage.model import FORMAT, HEADS, HINT_PREFIX, TriageModel, ngrams, rule_hints

URGENCY_LEVELS = ["low", "normal", "high", "emergency"]
DEFAULTS = {
    "char_ngrams": (1, 4),
    "word_ngrams": (1, 2),
    "min_df": 2,
    "C": {"kind": 10.0, "category": 10.0, "urgency": 10.0, "emergency": 10.0},
    "class_weight": {"kind": None, "category": None, "urgency": "balanced", "emergency": "balanced"},
    "C_grid": (10.0, 30.0, 100.0),
    # The rules' verdict as extra features (model.rule_hints), each worth `hint_value` beside the unit-length
    # text vector. Rows of `hint_skip_sources` train without them: the rules were written against those
    # messages, so there the rules look better than they are on anyone else's.
    "hints": True,
    "hint_value": 0.5,
    "hint_skip_sources": ("dev",),
    "prune": 0.002,
    # Cross-validated emergency recall the emergency threshold must keep (rules' hazards included), and the
    # recall of "emergency or unsure" the lower edge of the unsure band must keep: recall-first through the
    # safety question, without labelling every second message an emergency.
    "emergency_recall": 0.90,
    "unsure_recall": 0.985,
}


def _sklearn() -> Any:
    try:
        import numpy as np
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("training the triage model needs scikit-learn: pip install 'propdesk[train]'") from exc
    return np, sparse, LogisticRegression


def source_of(row: dict, default: str = "other") -> str:
    """The source a labelled row comes from: its `source` field, the t1/t2/t3 id prefix, or the default."""
    if row.get("source"):
        return row["source"]
    rid = str(row.get("id", ""))
    head = rid.split("-", 1)[0]
    if "-" in rid and head[:1] == "t" and head[1:].isdigit():
        return head
    return default


def read_jsonl(path: str | Path, source: str | None = None) -> list[dict]:
    """Labelled rows of one file, each with a `source`: `source` if given, else the id prefix (t1/t2/t3) or
    the file's stem."""
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.strip():
            row = json.loads(line)
            row["source"] = source or source_of(row, default=_file_source(path))
            rows.append(row)
    return rows


def _file_source(path: str | Path) -> str:
    stem = Path(path).name.removesuffix(".jsonl")
    return {"owner_messages_dev": "dev", "classifier_extra": "repo_extra",
            "owner_messages_extra": "repo_owner_extra"}.get(stem, stem)


# -- features ----------------------------------------------------------------------------------------------
class _Featurizer:
    """Counts once per row; the vocabulary and idf are built from whichever rows a fit trains on."""

    def __init__(self, rows: list[dict], params: dict):
        self.counts = [ngrams(r["text"], tuple(params["char_ngrams"]), tuple(params["word_ngrams"])) for r in rows]
        self.hint_value = params["hint_value"]
        self.hints: list[list[str]] = [[] for _ in rows]
        if params["hints"]:
            from bot.triage.classifier import get_classifier
            clf = get_classifier()
            self.rule_urgency = []
            for i, r in enumerate(rows):
                c = clf.classify(r["text"])
                self.rule_urgency.append(c.urgency)
                if r.get("source") not in params["hint_skip_sources"]:
                    self.hints[i] = [HINT_PREFIX + h for h in rule_hints(c)]
        self._rows = rows
        self._params = params

    def hints_for_test(self, i: int) -> list[str]:
        """At prediction time the rules' verdict is always there, whatever the row's source."""
        if not self._params["hints"]:
            return []
        if self.hints[i] or self._rows[i].get("source") not in self._params["hint_skip_sources"]:
            return self.hints[i]
        from bot.triage.classifier import get_classifier
        return [HINT_PREFIX + h for h in rule_hints(get_classifier().classify(self._rows[i]["text"]))]

    def vocab(self, idx: Sequence[int], min_df: int) -> dict[str, float]:
        df: dict[str, int] = {}
        for i in idx:
            for g in self.counts[i]:
                df[g] = df.get(g, 0) + 1
            for g in self.hints[i]:
                df[g] = df.get(g, 0) + 1
        n = len(idx)
        # scikit-learn's smooth idf: ln((1 + n) / (1 + df)) + 1; a hint's "idf" is its fixed value
        return {g: (self.hint_value if g.startswith(HINT_PREFIX) else math.log((1 + n) / (1 + d)) + 1.0)
                for g, d in sorted(df.items()) if d >= min_df}

    def matrix(self, idx: Sequence[int], idf: dict[str, float], columns: dict[str, int],
               test: bool = False) -> Any:
        np, sparse, _ = _sklearn()
        data, ind, ptr = [], [], [0]
        for i in idx:
            vec = {g: (1.0 + math.log(c)) * idf[g] for g, c in self.counts[i].items() if g in idf}
            norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
            for g, v in vec.items():
                ind.append(columns[g])
                data.append(v / norm)
            for g in (self.hints_for_test(i) if test else self.hints[i]):
                if g in idf:
                    ind.append(columns[g])
                    data.append(idf[g])
            ptr.append(len(ind))
        return sparse.csr_matrix((np.array(data), np.array(ind), np.array(ptr)), shape=(len(idx), len(columns)))


def _targets(rows: list[dict], head: str) -> list[str]:
    if head == "emergency":
        return ["emergency" if r["urgency"] == "emergency" else "-" for r in rows]
    return [r[head] for r in rows]


def _fit(X: Any, y: list[str], C: float, class_weight: Any, random_state: int) -> Any:
    _, _, LogisticRegression = _sklearn()
    clf = LogisticRegression(C=C, class_weight=class_weight, solver="newton-cg", max_iter=500,
                             random_state=random_state)
    clf.fit(X, y)
    return clf


def _proba(clf: Any, X: Any, labels: list[str]) -> Any:
    """Probabilities in the order of `labels` (a class missing from the training fold gets 0)."""
    np, _, _ = _sklearn()
    p = clf.predict_proba(X)
    out = np.zeros((X.shape[0], len(labels)))
    for j, c in enumerate(clf.classes_):
        out[:, labels.index(c)] = p[:, j]
    return out


# -- cross-validation over sources -------------------------------------------------------------------------
def oof_probabilities(rows: list[dict], params: dict, feats: _Featurizer | None = None) -> dict:
    """Leave-one-source-out probabilities for every row and head: {head: {C: array(n, labels)}} over the C grid,
    plus the labels per head. Every fold builds its own vocabulary from its training rows."""
    np, _, _ = _sklearn()
    feats = feats or _Featurizer(rows, params)
    sources = sorted({r["source"] for r in rows})
    labels = {h: sorted(set(_targets(rows, h))) for h in (*HEADS, "emergency")}
    out = {h: {C: np.zeros((len(rows), len(labels[h]))) for C in params["C_grid"]} for h in labels}
    for held in sources:
        test = [i for i, r in enumerate(rows) if r["source"] == held]
        train = [i for i, r in enumerate(rows) if r["source"] != held]
        idf = feats.vocab(train, params["min_df"])
        columns = {g: j for j, g in enumerate(idf)}
        Xtr, Xte = feats.matrix(train, idf, columns), feats.matrix(test, idf, columns, test=True)
        for h in labels:
            y = _targets([rows[i] for i in train], h)
            for C in params["C_grid"]:
                clf = _fit(Xtr, y, C, params["class_weight"][h], params["random_state"])
                out[h][C][test] = _proba(clf, Xte, labels[h])
    return {"labels": labels, "proba": out}


def _rule_urgencies(rows: list[dict]) -> list[str]:
    from bot.triage.classifier import get_classifier
    clf = get_classifier()
    return [clf.classify(r["text"]).urgency for r in rows]


def choose_thresholds(p_emergency: Sequence[float], truth: list[bool], rule_emergency: list[bool], recall: float,
                      unsure_recall: float) -> dict:
    """The highest emergency threshold whose cross-validated recall (model above it, or the rules say
    emergency: the combiner's policy) is at least `recall`; the unsure band's lower edge likewise for
    `unsure_recall`. Thresholds are kept within [0.05, 0.9]."""
    pairs = sorted(zip(p_emergency, truth, rule_emergency, strict=False))
    positives = sum(truth) or 1

    def best(target: float) -> float:
        chosen = 0.05
        for t in [x / 100 for x in range(5, 91)]:
            caught = sum(1 for p, y, r in pairs if y and (r or p >= t))
            if caught / positives >= target:
                chosen = t
        return chosen

    hi = best(recall)
    lo = min(best(unsure_recall), hi)
    return {"emergency": round(hi, 2), "unsure_low": round(min(lo, hi / 2) if lo >= hi else lo, 2)}


def tune(rows: list[dict], params: dict | None = None) -> dict:
    """Per head, the C of the grid with the best leave-one-source-out accuracy (emergency head: best log loss),
    and the emergency thresholds from those same out-of-fold probabilities."""
    np, _, _ = _sklearn()
    params = {**DEFAULTS, "random_state": 0, **(params or {})}
    oof = oof_probabilities(rows, params)
    chosen = {}
    report = {}
    for h, by_C in oof["proba"].items():
        labels = oof["labels"][h]
        y = np.array([labels.index(t) for t in _targets(rows, h)])
        scores = {}
        for C, p in by_C.items():
            if h == "emergency":
                scores[C] = -float(np.mean(-np.log(np.clip(p[np.arange(len(y)), y], 1e-9, 1))))
            else:
                scores[C] = float(np.mean(p.argmax(1) == y))
        chosen[h] = max(scores, key=lambda C: (scores[C], -C))
        report[h] = {str(C): round(s, 4) for C, s in scores.items()}
    labels = oof["labels"]["emergency"]
    p_em = oof["proba"]["emergency"][chosen["emergency"]][:, labels.index("emergency")]
    truth = [r["urgency"] == "emergency" for r in rows]
    rule_em = [u == "emergency" for u in _rule_urgencies(rows)]
    thresholds = choose_thresholds(list(p_em), truth, rule_em, params["emergency_recall"], params["unsure_recall"])
    return {"C": chosen, "thresholds": thresholds, "cv": report}


# -- the model ---------------------------------------------------------------------------------------------
def train(rows: list[dict], *, tune_params: bool = False, params: dict | None = None) -> dict:
    """Fit every head on `rows` and return the serialisable model (the dict model.py loads).

    rows: labelled messages (text, kind, category, urgency; `source` for tuning, see read_jsonl).
    tune_params: choose C per head and the emergency thresholds by leave-one-source-out cross-validation over
    the sources in `rows` (needs two or more); otherwise params["C"] and params["thresholds"] are used.
    """
    np, _, _ = _sklearn()
    params = {**DEFAULTS, "random_state": 0, "thresholds": {"emergency": 0.35, "unsure_low": 0.15},
              **(params or {})}
    tuned = None
    if tune_params and len({r.get("source") for r in rows}) >= 2:
        tuned = tune(rows, params)
        params = {**params, "C": tuned["C"], "thresholds": tuned["thresholds"]}
    feats = _Featurizer(rows, params)
    idx = list(range(len(rows)))
    idf = feats.vocab(idx, params["min_df"])
    columns = {g: j for j, g in enumerate(idf)}
    X = feats.matrix(idx, idf, columns)
    head_order = [*HEADS, "emergency"]
    heads = {}
    sparse_w: dict[str, list] = {g: [] for g in idf}
    grams = list(idf)
    for h_i, h in enumerate(head_order):
        y = _targets(rows, h)
        clf = _fit(X, y, params["C"][h], params["class_weight"][h], params["random_state"])
        if h == "emergency":
            labels = ["emergency"]
            coef = clf.coef_ if clf.classes_[1] == "emergency" else -clf.coef_
            bias = [float(clf.intercept_[0]) * (1 if clf.classes_[1] == "emergency" else -1)]
            heads[h] = {"type": "sigmoid", "labels": labels, "bias": [round(b, 5) for b in bias]}
        else:
            labels = [str(c) for c in clf.classes_]
            coef = clf.coef_
            heads[h] = {"type": "softmax", "labels": labels, "bias": [round(float(b), 5) for b in clf.intercept_]}
        nz = np.argwhere(np.abs(coef) >= params["prune"])
        for c, j in nz:
            sparse_w[grams[j]].extend([h_i, int(c), round(float(coef[c, j]), 4)])
    features = {g: [round(idf[g], 4), flat] for g, flat in sparse_w.items() if flat}
    meta = {"n_rows": len(rows), "sources": sorted({str(r.get("source")) for r in rows}),
            "C": params["C"], "class_weight": params["class_weight"], "min_df": params["min_df"],
            "prune": params["prune"], "random_state": params["random_state"]}
    if tuned:
        meta["cv"] = tuned["cv"]
    return {"format": FORMAT,
            "config": {"char_ngrams": list(params["char_ngrams"]), "word_ngrams": list(params["word_ngrams"]),
                       "max_chars": 2000, "hints": bool(params["hints"])},
            "head_order": head_order, "heads": heads, "features": features,
            "thresholds": params["thresholds"], "meta": meta}


def save(model: dict, path: str | Path) -> Path:
    """Write the model as gzip-compressed JSON (mtime 0, sorted keys: the same model gives the same bytes)."""
    path = Path(path)
    raw = json.dumps(model, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=9, mtime=0,
                                                 filename="") as gz:
        gz.write(raw)
    return path


def as_model(model: dict) -> TriageModel:
    return TriageModel.from_dict(model)


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="labelled JSON-lines files (each a source; t1/t2/t3 ids split)")
    ap.add_argument("-o", "--output", default=str(Path(__file__).with_name("model.json.gz")))
    ap.add_argument("--no-tune", action="store_true", help="use the default C and thresholds")
    args = ap.parse_args(argv)
    rows = [row for f in args.files for row in read_jsonl(f)]
    model = train(rows, tune_params=not args.no_tune)
    path = save(model, args.output)
    m = TriageModel.load(path)
    print(json.dumps({"output": str(path), "bytes": path.stat().st_size, "version": m.version,
                      "features": len(m.idf), "C": model["meta"]["C"], "thresholds": model["thresholds"],
                      "sources": model["meta"]["sources"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
