"""The `propdesk` command: run, db upgrade, classify, import owners|bills, estates, staff, qrcode, notice, report,
wechat."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bot.desk.access import ROLES
from bot.desk.trades import known_trades
from config.log_format import setup_logging
from config.settings import get_settings


CLASSIFY_EXAMPLE = '{"id": 1, "text": "电梯困人了，快来"}'
CLASSIFY_HELP = f"""Classify owners' messages. Input is JSON lines (FILE, or stdin): one JSON object per line with a
"text" string, other fields are kept, e.g.

  {CLASSIFY_EXAMPLE}

Output is one JSON line per input line, in order: the input's fields plus kind, category, urgency and reasons. A line
that is not such an object (plain text, say) gets {{"line": N, "error": ...}} and the exit status is 1.
"""


def cmd_classify(args: argparse.Namespace) -> int:
    """JSON lines in (FILE or stdin), JSON lines out in the same order with kind/category/urgency/reasons."""
    from bot.triage.classifier import get_classifier
    from bot.triage.combine import Triager

    clf = Triager(get_classifier(get_settings().rules_file), use_model=not args.rules_only)
    src = open(args.file, encoding="utf-8") if args.file else sys.stdin
    failed = 0
    with src:
        for n, line in enumerate(src, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                failed += 1
                got = "plain text" if row is None else f"JSON {type(row).__name__}"
                if isinstance(row, dict):
                    got = 'an object without a "text" string'
                error = f'expected one JSON object per line with a "text" string, e.g. {CLASSIFY_EXAMPLE}; got {got}'
                print(json.dumps({"line": n, "error": error}, ensure_ascii=False), flush=True)
                continue
            row.update(clf.classify(row["text"]).as_dict())
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def cmd_db(args: argparse.Namespace) -> int:
    from models.db import upgrade_url

    upgrade_url(get_settings().database_url)
    print("database is at the latest schema")
    return 0


def _in_session(fn):  # noqa: ANN001, ANN202
    """Run `fn(session, clock)` in one transaction on the configured (and migrated) database."""
    from bot.clock import Clock
    from models.db import make_engine, make_sessionmaker, upgrade

    settings = get_settings()

    async def go():  # noqa: ANN202
        engine = make_engine(settings.database_url, settings.sqlite_synchronous)
        try:
            await upgrade(engine)
            async with make_sessionmaker(engine)() as s, s.begin():
                return await fn(s, Clock(settings.timezone))
        finally:
            await engine.dispose()

    return asyncio.run(go())


IMPORT_HELP = """Import the office's roster (owners) or bills. All or nothing: every row is checked first, and one bad
row (reported with its row number) imports nothing of the file.

owners: columns estate, unit, name, phone[, role]
  estate   an existing estate's code or name (`propdesk estates` lists them; --create-estates for a new one)
  unit     building-entrance-room: 3-2-1502, or 3栋2单元1502
  name     the person's name
  phone    mobile or landline: 13900001111, 139-0000-1111, +86 139 0000 1111, (0755) 8888 1234
  role     owner (the default), family or tenant; or 业主, 家属, 租户

bills: columns estate, unit, period, item, amount_due, due_date[, amount_paid]
  period   YYYY, YYYY-MM, YYYYH1 or YYYYQ1
  item     e.g. 物业费 (at most 32 characters)
  amount_due, amount_paid   numbers, 0 <= amount_paid <= amount_due (amount_paid: 0 when omitted)
  due_date YYYY-MM-DD
"""


def cmd_import(args: argparse.Namespace) -> int:
    from bot.desk.roster_import import ImportError_, import_bills, import_owners

    fn = import_owners if args.what == "owners" else import_bills
    try:
        result = _in_session(lambda s, _clock: fn(s, args.file, create_estates=args.create_estates))
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


def cmd_estates(args: argparse.Namespace) -> int:
    """The estates with their codes (what imports, notices and staff commands take) and their buildings."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from models import Estate

    async def listing(s, _clock):  # noqa: ANN001, ANN202
        rows = (await s.scalars(select(Estate).options(selectinload(Estate.buildings)).order_by(Estate.code))).all()
        return [(e.code, e.name, sorted((b.name for b in e.buildings), key=lambda n: (not n.isdigit(), n.zfill(8))))
                for e in rows]

    rows = _in_session(listing)
    if not rows:
        print("no estates yet: `propdesk import owners FILE --create-estates` (or `propdesk run --demo`) adds them")
        return 0
    print("\t".join(("code", "name", "buildings")))
    for code, name, buildings in rows:
        print(f"{code}\t{name}\t{', '.join(buildings) or '-'}")
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    """Add staff and hand out one-time codes that link their Telegram (or other chat) account."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from bot.desk.staff_accounts import add_staff, issue_code
    from models import Person, Staff

    async def add(s, clock):  # noqa: ANN001, ANN202
        staff, code = await add_staff(s, clock, name=args.name, phone=args.phone, role=args.role,
                                      trade=args.trade, estates=args.estate)
        return staff.id, code

    async def code(s, clock):  # noqa: ANN001, ANN202
        staff = await s.scalar(select(Staff).join(Person).where(Person.phone == args.phone))
        return (staff.id, await issue_code(s, clock, staff)) if staff else (None, None)

    async def listing(s, _clock):  # noqa: ANN001, ANN202
        rows = (await s.scalars(select(Staff).options(selectinload(Staff.person)).order_by(Staff.id))).all()
        return [(st.id, st.person.name, st.person.phone, st.role, st.trade or "", st.active) for st in rows]

    async def password(s, _clock):  # noqa: ANN001, ANN202
        from bot.desk.signing import hash_password

        staff = await s.scalar(select(Staff).join(Person).where(Person.phone == args.phone))
        if staff is not None:
            staff.password_hash = hash_password(secret)
        return staff.id if staff else None

    if getattr(args, "phone", None):
        from handlers.common import parse_phone

        if args.action == "add" and parse_phone(args.phone) is None:
            print(f"{args.phone!r} is not a phone number (e.g. 13900001111, 139-0000-1111, 0755-88881234)",
                  file=sys.stderr)
            return 2
        args.phone = parse_phone(args.phone) or args.phone  # as owners' and the roster's numbers are kept
    if args.action == "password":
        import getpass

        secret = args.password or (sys.stdin.readline().strip() if not sys.stdin.isatty()
                                   else getpass.getpass("new password: "))
        if len(secret) < 8:
            print("a password needs at least 8 characters", file=sys.stderr)
            return 2
        staff_id = _in_session(password)
        if staff_id is None:
            print(f"no staff member with phone {args.phone}", file=sys.stderr)
            return 2
        print(f"staff #{staff_id}: password set (for the mobile staff page behind WeCom cards)")
        return 0
    if args.action == "list":
        print("\t".join(("id", "name", "phone", "role", "trade", "active")))
        for row in _in_session(listing):
            print("\t".join(str(x) for x in row))
        return 0
    try:
        staff_id, link_code = _in_session(add if args.action == "add" else code)
    except ValueError as exc:
        print(f"not added: {exc}", file=sys.stderr)
        return 2
    if staff_id is None:
        print(f"no staff member with phone {args.phone}", file=sys.stderr)
        return 2
    print(f"staff #{staff_id}: link code {link_code} (valid 24 h). In a private chat with the bot, send:")
    print(f"  /link {link_code}")
    return 0


def cmd_qrcode(args: argparse.Namespace) -> int:
    """Deep links (and PNG QR codes) that start a repair at a public place, from config/places.toml."""
    from pathlib import Path

    import segno

    from bot.desk.places import places

    bot = args.bot or get_settings().telegram_bot_username
    if not bot:
        print("name the bot: --bot USERNAME or PROPDESK_TELEGRAM_BOT_USERNAME", file=sys.stderr)
        return 2
    known = places()
    wanted = args.places or list(known)
    unknown = [p for p in wanted if p not in known]
    if unknown:
        print(f"unknown place(s): {', '.join(unknown)} (see config/places.toml)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for code in wanted:
        link = f"https://t.me/{bot.lstrip('@')}?start={code}"
        line = f"{code}\t{known[code]['name']}\t{link}"
        if out:
            path = out / f"{code}.png"
            segno.make(link, error="m").save(str(path), scale=8, border=2)
            line += f"\t{path}"
        print(line)
    return 0


def cmd_wechat(args: argparse.Namespace) -> int:
    """Create the official account's custom menu, or parametric QR codes for public places."""
    from pathlib import Path

    from bot.app import App
    from bot.channels.wechat.api import WeChatAPI, WeChatAPIError
    from bot.channels.wechat.menu import MENU
    from bot.desk.places import places
    from models.db import upgrade_url

    settings = get_settings()
    if not (settings.wechat_app_id and settings.wechat_app_secret):
        print("set PROPDESK_WECHAT_APP_ID and PROPDESK_WECHAT_APP_SECRET", file=sys.stderr)
        return 2
    known = places()
    wanted = getattr(args, "places", None) or list(known)
    if args.action == "qrcode" and [p for p in wanted if p not in known]:
        print(f"unknown place(s): {', '.join(p for p in wanted if p not in known)} (see config/places.toml)",
              file=sys.stderr)
        return 2
    upgrade_url(settings.database_url)  # the access token is kept in the database

    async def go() -> None:
        app = App.create(settings)
        api = WeChatAPI(app)
        await api.start()
        try:
            if args.action == "menu":
                await api.create_menu(MENU)
                print("menu created: " + " | ".join(b["name"] for b in MENU["button"]))
                return
            out = Path(args.out) if args.out else None
            if out:
                out.mkdir(parents=True, exist_ok=True)
            for code in wanted:
                qr = await api.create_qrcode(code)
                line = f"{code}\t{known[code]['name']}\t{qr['url']}"
                if out:
                    (out / f"{code}.png").write_bytes(await api.qrcode_image(qr["ticket"]))
                    line += f"\t{out / (code + '.png')}"
                print(line)
        finally:
            await api.close()
            await app.close()

    try:
        asyncio.run(go())
    except WeChatAPIError as exc:
        print(f"WeChat refused: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_notice(args: argparse.Namespace) -> int:
    """A notice (a water or power cut) to the owners bound to homes in the chosen buildings, over their channels."""
    from bot.jobs.notices import NoticeError, send_notice

    text = " ".join(args.text).strip()
    if not text or len(text) > 1000:
        print("the notice needs a text of at most 1000 characters", file=sys.stderr)
        return 2
    try:
        count = _in_session(lambda s, clock: send_notice(s, get_settings(), clock, estate=args.estate,
                                                         buildings=args.building or [], text=text))
    except NoticeError as exc:
        print(f"notice not sent: {exc}", file=sys.stderr)
        return 2
    if not count:
        print("notice queued to nobody: no owner there has bound a chat account to their home yet")
        return 0
    print(f"notice queued to {count} chat account(s); a running propdesk delivers it"
          " (held until the quiet hours end, if it is night)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The service report of a period (local days, both included) as JSON, CSV or an Excel workbook."""
    from datetime import date

    from bot.desk.report_export import write
    from bot.desk.reports import Period, ReportError, service_report

    settings = get_settings()
    try:
        first, last = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to)
        period = Period.days(first, last, settings.timezone)
    except ValueError as exc:
        print(f"bad period: {exc} (dates as YYYY-MM-DD, --from not after --to)", file=sys.stderr)
        return 2
    fmt = args.format or (args.out.rsplit(".", 1)[-1].lower() if args.out and "." in args.out else "json")
    if fmt not in ("json", "csv", "xlsx"):
        print(f"unknown format {fmt!r}: choose json, csv or xlsx", file=sys.stderr)
        return 2
    if fmt == "xlsx" and not args.out:
        print("an Excel report needs a file: --out FILE.xlsx", file=sys.stderr)
        return 2
    try:
        report = _in_session(lambda s, clock: service_report(s, period, now=clock.now(), by=args.by,
                                                             estates=args.estate or []))
    except ReportError as exc:
        print(f"no report: {exc}", file=sys.stderr)
        return 2
    try:
        written = write(report, fmt, args.out)
    except OSError as exc:
        print(f"cannot write {args.out}: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bot.runner import run

    return run(get_settings(), demo=args.demo, workers=args.workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="propdesk", description="propdesk property-management service desk")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="start the server (web chat, and every channel whose settings are present)")
    p.add_argument("--demo", action="store_true", help="seed the demo estate, owners, staff and bills if empty")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes sharing the HTTP port (PostgreSQL only; default 1)")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("db", help="database commands")
    p.add_argument("action", choices=["upgrade"])
    p.set_defaults(fn=cmd_db)
    p = sub.add_parser("classify", help="classify JSON lines (FILE or stdin) into kind/category/urgency",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=CLASSIFY_HELP)
    p.add_argument("file", nargs="?", help='a file of JSON lines, each {"text": ...}; stdin when omitted')
    p.add_argument("--rules-only", action="store_true", help="the rules alone, without the learned model")
    p.set_defaults(fn=cmd_classify)
    p = sub.add_parser("import", help="import the owner roster or bills from CSV or .xlsx",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=IMPORT_HELP)
    p.add_argument("what", choices=["owners", "bills"])
    p.add_argument("file", help="a CSV (UTF-8, a BOM is fine) or .xlsx file with a header row")
    p.add_argument("--create-estates", action="store_true",
                   help="create an estate named in the file that does not exist yet (else such a row is an error)")
    p.set_defaults(fn=cmd_import)
    p = sub.add_parser("estates", help="list the estates with their codes and buildings")
    p.set_defaults(fn=cmd_estates)
    p = sub.add_parser("staff", help="add staff, issue link codes for their chat accounts, list them")
    staff = p.add_subparsers(dest="action", required=True)
    a = staff.add_parser("add", help="add (or update) a staff member and print a one-time link code")
    a.add_argument("name")
    a.add_argument("phone")
    a.add_argument("--role", default="technician", choices=list(ROLES))
    a.add_argument("--trade", choices=list(known_trades()), help="the staff member's trade (工种)")
    a.add_argument("--estate", action="append", help="estate code (repeatable); all estates when omitted")
    a = staff.add_parser("code", help="a fresh link code for the staff member with this phone")
    a.add_argument("phone")
    staff.add_parser("list", help="list staff")
    a = staff.add_parser("password", help="set the password for the mobile staff page (read from stdin if piped)")
    a.add_argument("phone")
    a.add_argument("--password", help="the new password (else prompted, or one line on stdin)")
    p.set_defaults(fn=cmd_staff)
    p = sub.add_parser("qrcode", help="Telegram deep links and PNG QR codes for public places")
    p.add_argument("places", nargs="*", help="place codes from config/places.toml (all when omitted)")
    p.add_argument("--bot", help="the bot's username (else PROPDESK_TELEGRAM_BOT_USERNAME)")
    p.add_argument("--out", help="write a PNG per place into this folder")
    p.set_defaults(fn=cmd_qrcode)
    p = sub.add_parser("notice", help="send a notice (water or power cut) to the owners of chosen buildings")
    p.add_argument("--estate", required=True, help="estate code, e.g. SG")
    p.add_argument("--building", action="append", help="building name (repeatable); the whole estate if omitted")
    p.add_argument("text", nargs="+")
    p.set_defaults(fn=cmd_notice)
    p = sub.add_parser("report", help="service report of a period: on-time rates, completion, satisfaction, breaches")
    p.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD", help="first day (local)")
    p.add_argument("--to", dest="date_to", required=True, metavar="YYYY-MM-DD", help="last day (local), included")
    p.add_argument("--estate", action="append", metavar="CODE", help="estate code (repeatable); all when omitted")
    p.add_argument("--by", choices=["estate", "building", "kind", "category", "urgency", "staff", "trade", "channel"],
                   help="a row per estate, staff member, … besides the total")
    p.add_argument("--format", choices=["json", "csv", "xlsx"], help="default: from --out's extension, else json")
    p.add_argument("--out", metavar="FILE", help="write here (JSON and CSV go to stdout when omitted)")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("wechat", help="WeChat official account: custom menu, parametric QR codes")
    wx = p.add_subparsers(dest="action", required=True)
    wx.add_parser("menu", help="create the account's custom menu (报修, 投诉, 我的…)")
    a = wx.add_parser("qrcode", help="permanent QR codes whose scan starts a repair at a place")
    a.add_argument("places", nargs="*", help="place codes from config/places.toml (all when omitted)")
    a.add_argument("--out", help="save a PNG per place into this folder")
    p.set_defaults(fn=cmd_wechat)
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        setup_logging(settings.log_level, settings.log_format)
    except Exception:  # noqa: BLE001 - a bad setting: the command says so itself
        setup_logging()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
