"""Classifier: the dev-set figures, the LABELS.md traps, estate rule files, the CLI contract."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.classifier_eval import evaluate
from bot.triage.classifier import Classifier, get_classifier, load_rules

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "owner_messages_dev.jsonl"


@pytest.mark.skipif(not DEV.exists(), reason="../shared/data/owner_messages_dev.jsonl not present")
def test_dev_set_figures():
    r = evaluate(str(DEV))
    assert r["urgency"] >= 0.90 and r["kind"] >= 0.90 and r["emergency_recall"] == 1.0


def test_extra_examples_written_for_this_repo():
    r = evaluate(str(ROOT / "tests" / "data" / "classifier_extra.jsonl"))
    assert r["urgency"] >= 0.9 and r["emergency_recall"] == 1.0


@pytest.mark.parametrize("text,kind,category,urgency", [
    ("燃气费怎么交", "fee", "fee", "low"),                                  # money question naming a hazard
    ("昨天电梯困人的事处理得很好，谢谢", "inquiry", "lift", "low"),          # past, resolved
    ("不是很急，有空来看看阳台的灯", "repair", "electrical", "normal"),      # negation / calm
    ("火锅味太重", None, None, "normal"),                                  # figurative: not a fire
    ("电梯广告太吵", "complaint", "noise", "normal"),
    ("楼道灯坏了。另外我家燃气味很重！", "repair", "gas", "emergency"),     # two issues: the most urgent
    ("There is no gas smell, just asking when the meter gets replaced?", "inquiry", "gas", "low"),
    ("my toddler locked himself in the bathroom and the tap is running", None, "doors_windows", "emergency"),
])
def test_traps(text, kind, category, urgency):
    c = get_classifier().classify(text)
    assert c.urgency == urgency, c
    if kind:
        assert c.kind == kind, c
    if category:
        assert c.category == category, c
    assert c.reasons


def test_reasons_name_the_rule_that_decided():
    c = get_classifier().classify("卧室插座刚才冒火花了")
    assert c.urgency == "emergency" and "rule:electrical_burning" in c.reasons


def test_garbage_input_is_low_inquiry():
    for text in ["", "   ", "🙂🙂🙂", "asdfghjkl", "x" * 20000, "\x00\x01"]:
        c = get_classifier().classify(text)
        assert (c.kind, c.urgency) == ("inquiry", "low")


def test_estate_rule_file_extends_the_shipped_rules(tmp_path):
    extra = tmp_path / "estate.toml"
    extra.write_text('''
[categories.public_facility]
"喷泉" = 5

[[rules]]
name = "fountain_pump_leaking_power"
urgency = "emergency"
category = "public_facility"
kind = "repair"
any = ["喷泉.{0,6}漏电"]
''', encoding="utf-8")
    base = get_classifier().classify("中心喷泉好像漏电了")
    clf = Classifier(load_rules(extra))
    c = clf.classify("中心喷泉好像漏电了")
    assert c.urgency == "emergency" and "rule:fountain_pump_leaking_power" in c.reasons
    assert base.urgency != "emergency" or "rule:fountain_pump_leaking_power" not in base.reasons


def test_cli_contract_keeps_fields_and_order(tmp_path):
    lines = [{"id": "a", "text": "厨房水管爆了", "extra": 1}, {"id": "b", "text": "物业费怎么交"},
             {"id": "c", "text": "thanks for the quick fix!"}]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bot.cli", "classify", str(src)], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    rows = [json.loads(x) for x in out]
    assert [r["id"] for r in rows] == ["a", "b", "c"] and rows[0]["extra"] == 1
    assert (rows[0]["kind"], rows[0]["category"], rows[0]["urgency"]) == ("repair", "water", "emergency")
    assert rows[1]["kind"] == "fee" and isinstance(rows[2]["reasons"], list)
    # stdin works too, and a bad line gets an error object in its place, not a crash
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "classify"], cwd=ROOT, capture_output=True, text=True,
                          input='{"text": "电梯困人了"}\nnot json\n{"no_text": 1}\n')
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert rows[0]["urgency"] == "emergency" and "error" in rows[1] and "error" in rows[2]
    assert proc.returncode == 1
