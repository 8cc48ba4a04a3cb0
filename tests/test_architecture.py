"""The channel-neutral core never imports a platform SDK."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("telegram", "wechatpy", "aiohttp")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_handlers_and_models_import_no_platform_sdk():
    files = list((ROOT / "handlers").rglob("*.py")) + list((ROOT / "models").rglob("*.py"))
    assert len(files) > 8
    offenders = {str(f.relative_to(ROOT)): sorted(imports_of(f) & set(FORBIDDEN)) for f in files}
    assert {f: i for f, i in offenders.items() if i} == {}


def test_the_check_would_catch_an_sdk_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from telegram import Update\nimport wechatpy.client\n")
    assert imports_of(bad) & set(FORBIDDEN) == {"telegram", "wechatpy"}


def test_platform_sdks_stay_in_the_channel_adapters():
    """Outside bot/channels/ nothing imports telegram or wechatpy: dispatch, delivery and cards are shared."""
    files = [f for f in (ROOT / "bot").rglob("*.py") if "channels" not in f.parts]
    assert len(files) > 10
    offenders = {str(f.relative_to(ROOT)): sorted(imports_of(f) & {"telegram", "wechatpy"}) for f in files}
    assert {f: i for f, i in offenders.items() if i} == {}
