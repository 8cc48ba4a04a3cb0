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


def _absolute_imports(path: Path) -> set[str]:
    """Every module a file imports, by its full dotted name (relative imports resolved against the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - (node.level - 1)] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names |= {f"{module}.{a.name}" for a in node.names}
    return names


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for f in files:
        bad = sorted(n for n in _absolute_imports(f) if any(n == p or n.startswith(p + ".") for p in forbidden))
        if bad:
            found[str(f.relative_to(ROOT))] = bad
    return found


def test_channel_adapters_only_translate():
    """bot/channels/** reaches the database only through the desk services: no models, no SQLAlchemy."""
    files = list((ROOT / "bot" / "channels").rglob("*.py"))
    assert len(files) > 10
    assert _offenders(files, ("models", "sqlalchemy")) == {}


def test_the_desk_imports_no_channel():
    """The desk serves every surface alike: nothing under bot/desk/ (or triage, jobs) knows a channel."""
    files = [f for d in ("desk", "triage", "jobs") for f in (ROOT / "bot" / d).rglob("*.py")]
    assert len(files) > 10
    assert _offenders(files, ("bot.channels", "telegram", "wechatpy", "aiohttp")) == {}


def test_handlers_and_models_know_no_application():
    """The flows and the models are the inner layers: they import nothing of bot/."""
    files = list((ROOT / "handlers").rglob("*.py")) + list((ROOT / "models").rglob("*.py"))
    assert _offenders(files, ("bot",)) == {}


def test_bot_is_packages_named_for_what_they_hold():
    top = sorted(p.name for p in (ROOT / "bot").iterdir() if p.suffix == ".py" and p.name != "__init__.py")
    assert top == ["app.py", "cli.py", "clock.py", "runner.py", "server.py"]
    for package in ("conversation", "desk", "triage", "delivery", "jobs", "ops", "channels/telegram", "channels/wechat",
                    "channels/wecom", "channels/web"):
        assert (ROOT / "bot" / package / "__init__.py").exists(), package


def test_the_boundary_checks_would_catch_a_breach(tmp_path):
    adapter = ROOT / "bot" / "channels" / "_probe_breach.py"
    adapter.write_text("from models import Ticket\nfrom sqlalchemy import select\nfrom ..desk import x\n")
    try:
        assert _offenders([adapter], ("models", "sqlalchemy")) == {
            "bot/channels/_probe_breach.py": ["models", "models.Ticket", "sqlalchemy", "sqlalchemy.select"]}
        assert "bot.desk.x" in _absolute_imports(adapter)
    finally:
        adapter.unlink()
