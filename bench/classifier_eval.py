"""Measure the classifier on a labelled JSON-lines file: kind, category and urgency accuracy, emergency recall.

    python bench/classifier_eval.py ../shared/data/owner_messages_dev.jsonl [--errors]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.triage.classifier import get_classifier  # noqa: E402


def evaluate(path: str, show_errors: bool = False) -> dict:
    clf = get_classifier()
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    hits = {"kind": 0, "category": 0, "urgency": 0}
    emergencies = caught = 0
    for row in rows:
        got = clf.classify(row["text"])
        wrong = [f for f in hits if getattr(got, f) != row[f]]
        for f in hits:
            hits[f] += f not in wrong
        if row["urgency"] == "emergency":
            emergencies += 1
            caught += got.urgency == "emergency"
        if wrong and show_errors:
            print(f"{row.get('id')}: want {row['kind']}/{row['category']}/{row['urgency']} "
                  f"got {got.kind}/{got.category}/{got.urgency} {got.reasons} | {row['text']}")
    n = len(rows)
    return {"n": n, **{f: round(hits[f] / n, 3) for f in hits},
            "emergency_recall": round(caught / emergencies, 3) if emergencies else None}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = args[0] if args else str(Path(__file__).resolve().parents[2] / "shared/data/owner_messages_dev.jsonl")
    print(json.dumps(evaluate(path, "--errors" in sys.argv)))
