"""The `propdesk` command: run, db upgrade, classify, import owners|bills, seed."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from config.settings import get_settings


def cmd_classify(args: argparse.Namespace) -> int:
    """JSON lines in (FILE or stdin), JSON lines out in the same order with kind/category/urgency/reasons."""
    from bot.classifier import get_classifier

    clf = get_classifier(get_settings().rules_file)
    src = open(args.file, encoding="utf-8") if args.file else sys.stdin
    failed = 0
    with src:
        for n, line in enumerate(src, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise ValueError('each line must be a JSON object with a "text" string')
            except ValueError as exc:
                failed += 1
                print(json.dumps({"line": n, "error": str(exc)}, ensure_ascii=False), flush=True)
                continue
            row.update(clf.classify(row["text"]).as_dict())
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def cmd_db(args: argparse.Namespace) -> int:
    from models.db import upgrade_url

    upgrade_url(get_settings().database_url)
    print("database is at the latest schema")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from bot.importers import ImportError_, import_bills, import_owners
    from models.db import make_engine, make_sessionmaker, upgrade

    fn = import_owners if args.what == "owners" else import_bills

    async def go():
        engine = make_engine(get_settings().database_url)
        try:
            await upgrade(engine)
            async with make_sessionmaker(engine)() as s, s.begin():
                return await fn(s, args.file)
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(go())
    except ImportError_ as exc:
        print(f"{args.file}: not imported, nothing was changed. {len(exc.errors)} problem(s):", file=sys.stderr)
        for n, message in exc.errors[:100]:
            print(f"  row {n}: {message}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.file}: cannot read: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: {result.rows} rows imported ({result.created} new, {result.updated} updated)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bot.runner import run

    return run(get_settings(), demo=args.demo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="propdesk", description="propdesk property-management service desk")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="start the server (web chat, and every channel whose settings are present)")
    p.add_argument("--demo", action="store_true", help="seed the demo estate, owners, staff and bills if empty")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("db", help="database commands")
    p.add_argument("action", choices=["upgrade"])
    p.set_defaults(fn=cmd_db)
    p = sub.add_parser("classify", help="classify JSON lines (FILE or stdin) into kind/category/urgency")
    p.add_argument("file", nargs="?")
    p.set_defaults(fn=cmd_classify)
    p = sub.add_parser("import", help="import the owner roster or bills from CSV or .xlsx")
    p.add_argument("what", choices=["owners", "bills"])
    p.add_argument("file")
    p.set_defaults(fn=cmd_import)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
