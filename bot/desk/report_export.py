"""A service report as JSON, CSV or an Excel workbook, and as the managers' chat summary.

All three files carry the same table (`summary_table`): a row for the whole selection, then one per slice; a rate
becomes three columns, its value (a fraction: 0.95) and the counts behind it (`<rate>_count`, `<rate>_of`). The
breach list is the workbook's second sheet, and a second CSV file next to the first (`<name>_breaches.csv`).
"""
from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path
from typing import Any

from config.i18n import t

from bot.desk.reports import FIGURES, Report

# Column headers: Chinese above, the English key below.
ZH = {
    "slice": "范围", "staff_id": "员工编号",
    "received": "受理数", "resolved": "完成数", "closed": "关闭数", "cancelled": "撤销数", "rejected": "退单数",
    "reopened": "重开数", "open_at_end": "期末未完成", "overdue_at_end": "期末超时未完成",
    "open_age_p50_h": "未完成时长中位数(小时)", "open_age_max_h": "最长未完成(小时)", "oldest_open": "最久未完成工单",
    "on_time_claim_rate": "接单及时率", "on_time_arrive_rate": "到场及时率", "on_time_resolve_rate": "完成及时率",
    "completion_rate": "完成率", "return_visit_rate": "回访率", "satisfaction_rate": "满意率",
    "avg_rating": "平均评分", "rated": "评价数", "reopen_rate": "重开率",
    "first_response_p50_min": "首次响应中位数(分钟)", "first_response_p90_min": "首次响应P90(分钟)",
    "resolution_p50_h": "处理时长中位数(小时)", "resolution_p90_h": "处理时长P90(小时)",
    "complaints_received": "投诉受理数", "complaint_on_time_rate": "投诉处理及时率",
    "complaint_satisfaction_rate": "投诉满意率", "breaches": "超时次数",
    "number": "工单号", "deadline": "考核节点", "due_at": "时限", "done_at": "实际时间", "late_min": "超时(分钟)",
    "assignee": "处理人", "estate": "小区", "kind": "类型", "category": "类别", "urgency": "紧急程度", "status": "状态",
    "building": "楼栋", "staff": "员工", "trade": "工种", "channel": "渠道",
}
BREACH_COLUMNS = ("number", "deadline", "due_at", "done_at", "late_min", "assignee", "estate", "kind", "category",
                  "urgency", "status")
TOTAL = "total"  # the `slice` of the row for the whole selection
NONE = "(none)"  # the `slice` of tickets without a value for the dimension (no assignee, a public area)


def summary_columns(by: str | None) -> list[str]:
    cols = ["slice"] + (["staff_id"] if by == "staff" else [])
    for key in FIGURES:
        cols.append(key)
        if key.endswith("_rate"):
            cols += [f"{key}_count", f"{key}_of"]
    return cols


def _flat(row: dict[str, Any], label: Any, by: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"slice": label}
    if by == "staff":
        out["staff_id"] = row.get("staff_id")
    for key in FIGURES:
        value = row[key]
        if isinstance(value, dict):  # a rate
            out[key], out[f"{key}_count"], out[f"{key}_of"] = value["value"], value["count"], value["of"]
        else:
            out[key] = value
    return out


def summary_table(data: dict) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of a report's JSON form (`Report.as_dict()`): the total first, then the slices."""
    by = data["by"]
    rows = [_flat(data["total"], TOTAL, by)]
    for s in data["slices"]:
        rows.append(_flat(s, s[by] if s[by] is not None else NONE, by))
    return summary_columns(by), rows


def breach_table(data: dict) -> tuple[list[str], list[dict[str, Any]]]:
    return list(BREACH_COLUMNS), [{k: b[k] for k in BREACH_COLUMNS} for b in data["breaches"]]


def to_json(report: Report) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False, indent=2)


def _csv(columns: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def to_csv(report: Report) -> tuple[str, str]:
    """(the summary, the breach list) as CSV texts with English headers."""
    data = report.as_dict()
    return _csv(*summary_table(data)), _csv(*breach_table(data))


def _width(text: Any) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in str(text))


def to_xlsx(report: Report, path: str | Path) -> None:
    """One workbook: 汇总 Summary (a row per slice), 超时明细 Breaches, 说明 About."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    data = report.as_dict()
    wb = Workbook()
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")

    def sheet(ws, columns: list[str], rows: list[dict], percent: set[str]) -> None:  # noqa: ANN001
        ws.append([ZH.get(c.removesuffix("_count").removesuffix("_of"), c)
                   + ("·达标" if c.endswith("_rate_count") else "·基数" if c.endswith("_rate_of") else "")
                   for c in columns])
        ws.append(columns)
        for r in (1, 2):
            for cell in ws[r]:
                cell.font, cell.fill = bold, fill
                cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        for row in rows:
            ws.append([row[c] for c in columns])
        for i, c in enumerate(columns, start=1):
            letter = get_column_letter(i)
            widest = max([_width(ws.cell(1, i).value), _width(c)] + [_width(row[c]) for row in rows
                                                                       if row[c] is not None])
            ws.column_dimensions[letter].width = min(max(widest + 2, 8), 40)
            if c in percent:
                for r in range(3, len(rows) + 3):
                    ws.cell(r, i).number_format = "0.0%"
        ws.freeze_panes = "B3"  # the two header rows and the first column stay in view

    ws = wb.active
    ws.title = "汇总 Summary"
    columns, rows = summary_table(data)
    sheet(ws, columns, rows, {c for c in columns if c.endswith("_rate")})
    ws = wb.create_sheet("超时明细 Breaches")
    sheet(ws, *breach_table(data), set())
    ws = wb.create_sheet("说明 About")
    period = data["period"]
    span = f"{period['from'] or period['start_utc']} – {period['to'] or period['end_utc']}"
    for key, value in [("period 统计期", span),
                       ("timezone 时区", period["timezone"]), ("as of 截至", data["as_of"]),
                       ("by 分组", data["by"] or "-"),
                       ("filters 筛选", json.dumps(data["filters"], ensure_ascii=False) if data["filters"] else "-"),
                       ("rates 比率", "value = count ÷ of (达标 ÷ 基数); see README, Service reports")]:
        ws.append([key, value])
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 16, 60
    wb.save(path)


def write(report: Report, fmt: str, out: str | None) -> list[str]:
    """Write the report in `fmt` to `out` (JSON and CSV to stdout when None); the files written."""
    if fmt == "json":
        text = to_json(report)
        if out is None:
            print(text)
            return []
        Path(out).write_text(text + "\n", encoding="utf-8")
        return [out]
    if fmt == "csv":
        summary, breaches = to_csv(report)
        if out is None:
            print(summary, end="")
            return []
        second = Path(out).with_name(Path(out).stem + "_breaches.csv")
        Path(out).write_text(summary, encoding="utf-8-sig")  # with a BOM: Excel reads the Chinese right
        second.write_text(breaches, encoding="utf-8-sig")
        return [out, str(second)]
    if fmt == "xlsx":
        if out is None:
            raise ValueError("an Excel report needs a file")
        to_xlsx(report, out)
        return [out]
    raise ValueError(f"unknown format {fmt!r}")


# --- the managers' chat summary ----------------------------------------------------------------------------

def pct(rate: dict) -> str:
    return "-" if rate["value"] is None else f"{rate['value'] * 100:.1f}% ({rate['count']}/{rate['of']})"


def late_text(lang: str, minutes: int) -> str:
    d, rest = divmod(minutes, 1440)
    h, m = divmod(rest, 60)
    if d:
        return t(lang, "report.late_days", d=d, h=h)
    if h:
        return t(lang, "report.late_hours", h=h, m=m)
    return t(lang, "report.late_minutes", m=m)


def summary_text(report: Report, lang: str, title: str, worst: int = 3) -> str:
    """The headline figures and the worst breaches, for a staff group."""
    f = report.as_dict()["total"]
    lines = [title, t(lang, "report.headline", received=f["received"], resolved=f["resolved"],
                      completion=pct(f["completion_rate"]), claim=pct(f["on_time_claim_rate"]),
                      arrive=pct(f["on_time_arrive_rate"]), resolve=pct(f["on_time_resolve_rate"]),
                      visit=pct(f["return_visit_rate"]), satisfaction=pct(f["satisfaction_rate"]),
                      rating=f["avg_rating"] if f["avg_rating"] is not None else "-",
                      complaints=f["complaints_received"], complaint_on_time=pct(f["complaint_on_time_rate"]),
                      complaint_satisfaction=pct(f["complaint_satisfaction_rate"]), open=f["open_at_end"],
                      overdue=f["overdue_at_end"], breaches=f["breaches"])]
    bad = report.worst_breaches(worst)
    if bad:
        lines.append(t(lang, "report.worst"))
        lines += [t(lang, "report.breach_line", number=b.number, what=t(lang, f"report.what.{b.deadline}"),
                    late=late_text(lang, b.late_min), assignee=b.assignee or "-") for b in bad]
    else:
        lines.append(t(lang, "report.no_breaches"))
    return "\n".join(lines)
