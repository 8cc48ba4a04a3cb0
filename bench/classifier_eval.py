"""Measure the classifiers: leave-one-source-out (LOSO) for rules, model and combined; or one file.

LOSO (the default):

    python bench/classifier_eval.py --data ../shared/data [--extra tests/data/owner_messages_extra.jsonl] [--errors]

Sources: owner_messages_dev.jsonl (dev), the t1/t2/t3 id prefixes of owner_messages_train.jsonl (three
writers), and every labelled *.jsonl of the repo under tests/data/ and config/ (each file its own source). For
each source a model is trained (C and thresholds tuned by LOSO over the *other* sources only) on all the other
sources and tested on it, so no message is ever scored by a model that saw it. Reported per source and as the
mean over sources: kind, category and urgency accuracy, emergency recall and precision, the unsure rate and the
urgency confusion matrix (rows: truth, columns: predicted), for rules only, model only and combined. JSON on
stdout (--json FILE to write it elsewhere), a readable table on stderr.

One file (the old mode): the shipped combined classifier (or --system rules|model) on that file:

    python bench/classifier_eval.py ../shared/data/owner_messages_dev.jsonl [--errors] [--system rules]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.triage.classifier import get_classifier  # noqa: E402

URGENCIES = ["low", "normal", "high", "emergency"]
FIELDS = ("kind", "category", "urgency")
SYSTEMS = ("rules", "model", "combined")


# -- scoring ------------------------------------------------------------------------------------------------
def score(rows: list[dict], preds: list[dict]) -> dict:
    """Accuracy per field, emergency recall/precision, unsure rate, urgency confusion matrix."""
    n = len(rows)
    out: dict = {"n": n}
    for f in FIELDS:
        out[f] = round(sum(p[f] == r[f] for r, p in zip(rows, preds, strict=False)) / n, 3) if n else None
    truth = [r["urgency"] == "emergency" for r in rows]
    said = [p["urgency"] == "emergency" for p in preds]
    tp = sum(t and s for t, s in zip(truth, said, strict=False))
    out["emergency_recall"] = round(tp / sum(truth), 3) if any(truth) else None
    out["emergency_precision"] = round(tp / sum(said), 3) if any(said) else None
    flagged = sum(t and (s or bool(p.get("unsure"))) for t, s, p in zip(truth, said, preds, strict=False))
    out["emergency_or_unsure_recall"] = round(flagged / sum(truth), 3) if any(truth) else None
    out["unsure_rate"] = round(sum(bool(p.get("unsure")) for p in preds) / n, 3) if n else None
    out["confusion"] = [[sum(1 for r, p in zip(rows, preds, strict=False) if r["urgency"] == a and p["urgency"] == b)
                         for b in URGENCIES] for a in URGENCIES]
    return out


def _mean(results: list[dict]) -> dict:
    keys = [*FIELDS, "emergency_recall", "emergency_precision", "emergency_or_unsure_recall", "unsure_rate"]
    out = {"n": sum(r["n"] for r in results)}
    for k in keys:
        vals = [r[k] for r in results if r[k] is not None]
        out[k] = round(sum(vals) / len(vals), 3) if vals else None
    out["confusion"] = [[sum(r["confusion"][i][j] for r in results) for j in range(4)] for i in range(4)]
    return out


def _pooled(rows_by_source: dict, preds_by_source: dict) -> dict:
    rows = [r for s in rows_by_source for r in rows_by_source[s]]
    preds = [p for s in rows_by_source for p in preds_by_source[s]]
    out = score(rows, preds)
    out.pop("confusion")
    return out


# -- the three systems on a list of rows ----------------------------------------------------------------------
def predict_all(rows: list[dict], model=None) -> dict[str, list[dict]]:
    """Predictions of rules, model and combined for every row (model: the model's heads alone, its emergency
    threshold applied; it sees the rules' verdict as features when trained so)."""
    from bot.triage.combine import combine
    clf = get_classifier()
    out: dict[str, list[dict]] = {s: [] for s in SYSTEMS}
    for row in rows:
        rules = clf.classify(row["text"])
        out["rules"].append({**rules.as_dict(), "unsure": False})
        if model is None:
            continue
        pred = model.predict(row["text"], rules=rules)
        hi = pred.thresholds.get("emergency", 0.35)
        urgency = "emergency" if pred.emergency_probability >= hi else (
            pred.urgency if pred.urgency != "emergency"
            else max((u for u in URGENCIES[:3]), key=lambda u: pred.probs["urgency"][u]))
        out["model"].append({"kind": pred.kind, "category": pred.category, "urgency": urgency,
                             "reasons": [f"p_emergency {pred.emergency_probability:.2f}"], "unsure": False})
        t = combine(rules, pred)
        out["combined"].append({**t.as_dict(), "unsure": t.unsure,
                                "emergency_probability": t.emergency_probability})
    return out


def _errors(source: str, rows: list[dict], preds: dict[str, list[dict]], system: str) -> list[str]:
    lines = []
    for row, p in zip(rows, preds[system], strict=False):
        if any(p[f] != row[f] for f in FIELDS):
            lines.append(f"[{source}/{system}] {row.get('id')}: want {row['kind']}/{row['category']}/{row['urgency']}"
                         f" got {p['kind']}/{p['category']}/{p['urgency']} {p.get('reasons')} | {row['text']}")
    return lines


# -- leave one source out -------------------------------------------------------------------------------------
def default_files(data_dir: Path) -> list[Path]:
    shared = [data_dir / "owner_messages_dev.jsonl", data_dir / "owner_messages_train.jsonl"]
    repo = sorted((ROOT / "tests" / "data").glob("*.jsonl")) + sorted((ROOT / "config").glob("**/*.jsonl"))
    return [p for p in shared if p.exists()] + repo


def loso(files: list[Path], show_errors: bool = False, tune: bool = True, error_system: str = "combined") -> dict:
    from bot.triage.model import TriageModel
    from bot.triage.train import read_jsonl, train
    rows = [r for f in files for r in read_jsonl(f) if {"text", *FIELDS} <= r.keys()]
    sources = list(dict.fromkeys(r["source"] for r in rows))
    by_source = {s: [r for r in rows if r["source"] == s] for s in sources}
    results: dict = {s: {} for s in SYSTEMS}
    preds_by: dict = {s: {} for s in SYSTEMS}
    models = {}
    for held in sources:
        train_rows = [r for r in rows if r["source"] != held]
        assert not {id(r) for r in train_rows} & {id(r) for r in by_source[held]}
        model = TriageModel.from_dict(train(train_rows, tune_params=tune))
        models[held] = {"thresholds": model.thresholds, "C": model.meta.get("C"), "features": len(model.idf)}
        preds = predict_all(by_source[held], model)
        for s in SYSTEMS:
            results[s][held] = score(by_source[held], preds[s])
            preds_by[s][held] = preds[s]
        if show_errors:
            for line in _errors(held, by_source[held], preds, error_system):
                print(line, file=sys.stderr)
    report = {"files": [str(f) for f in files], "sources": {s: len(by_source[s]) for s in sources},
              "models": models}
    for s in SYSTEMS:
        report[s] = {"per_source": results[s], "mean": _mean(list(results[s].values())),
                     "pooled": _pooled(by_source, preds_by[s])}
    return report


def table(report: dict) -> str:
    cols = ("n", "kind", "category", "urgency", "emergency_recall", "emergency_precision",
            "emergency_or_unsure_recall", "unsure_rate")
    head = f"{'system':9} {'source':18} " + " ".join(f"{c.replace('emergency_or_unsure_', 'em|unsure_').replace('emergency_', 'em_')[:12]:>12}" for c in cols)
    lines = [head, "-" * len(head)]
    for s in SYSTEMS:
        rows = list(report[s]["per_source"].items()) + [("MEAN", report[s]["mean"]),
                                                         ("pooled", report[s]["pooled"])]
        for src, r in rows:
            lines.append(f"{s:9} {src:18} " + " ".join(f"{'-' if r[c] is None else r[c]:>12}" for c in cols))
        m = report[s]["mean"]["confusion"]
        lines.append(f"{'':9} confusion (truth rows low/normal/high/emergency, predicted columns): {m}")
        lines.append("")
    return "\n".join(lines)


# -- one file, the old mode -----------------------------------------------------------------------------------
def evaluate(path: str, show_errors: bool = False, system: str = "rules") -> dict:
    """One labelled file through one system: `rules` (the default: what tests/test_classifier.py checks), `model`
    or `combined` (the shipped model). Returns n, kind, category, urgency, emergency_recall/precision."""
    from bot.triage.train import read_jsonl
    rows = read_jsonl(path)
    model = None
    if system != "rules":
        from bot.triage.model import get_model
        model = get_model()
    preds = predict_all(rows, model)
    if show_errors:
        print("\n".join(_errors(Path(path).stem, rows, preds, system)))
    out = score(rows, preds[system])
    for k in ("unsure_rate", "confusion", "emergency_or_unsure_recall"):
        out.pop(k)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Leave-one-source-out evaluation of rules, model and combined.")
    ap.add_argument("file", nargs="?", help="one labelled file: score the shipped system on it (no LOSO)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"),
                    help="directory of owner_messages_dev/train.jsonl (default: <repo>/../shared/data)")
    ap.add_argument("--files", nargs="*", help="exactly these labelled files instead of the defaults")
    ap.add_argument("--extra", nargs="*", default=[], help="more labelled files (each its own source)")
    ap.add_argument("--system", choices=SYSTEMS, default="combined", help="one-file mode: which system")
    ap.add_argument("--errors", action="store_true", help="print every wrong message (stderr in LOSO mode)")
    ap.add_argument("--errors-of", choices=SYSTEMS, default="combined")
    ap.add_argument("--no-tune", action="store_true", help="LOSO with the default C and thresholds")
    ap.add_argument("--json", help="write the JSON report here instead of stdout")
    args = ap.parse_args(argv)
    if args.file:
        print(json.dumps(evaluate(args.file, args.errors, args.system)))
        return 0
    files = [Path(f) for f in args.files] if args.files else default_files(Path(args.data))
    files += [Path(f) for f in args.extra if Path(f).resolve() not in {x.resolve() for x in files}]
    if not any(f.name == "owner_messages_train.jsonl" for f in files):
        print(f"note: no owner_messages_train.jsonl under {args.data}; pass --data", file=sys.stderr)
    report = loso(files, args.errors, tune=not args.no_tune, error_system=args.errors_of)
    text = json.dumps(report, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    print(table(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
