"""One logging setup for every process: key=value (default) or JSON lines, personal data masked.

Ticket log lines carry `ticket`, `estate` and `urgency` fields (pass `extra=ticket_fields(...)`); phone numbers
never reach a log line, whether in the message, an argument or a database error's parameters.
"""
from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

# A mainland mobile (with or without +86 and separators) or any run of 7+ digits with phone punctuation.
_PHONE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)"
                    r"|(?<![\w.])\(?0\d{2,3}\)?[\s-]?\d{3,4}[\s-]?\d{4}(?!\d)")
FIELDS = ("ticket", "estate", "urgency", "channel", "chat")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_personal(text: str) -> str:
    """Phone numbers replaced by their first three and last two digits: enough to tell two apart, not to call."""
    def masked(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return f"{digits[:3]}****{digits[-2:]}"
    return _PHONE.sub(masked, text)


def ticket_fields(number: str, estate: Any = None, urgency: str | None = None) -> dict[str, Any]:
    """The fields every log line about a ticket carries."""
    return {"ticket": number, "estate": estate if estate is not None else "-", "urgency": urgency or "-"}


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool):
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": mask_personal(record.getMessage())}
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                fields[key] = mask_personal(str(value))
        if record.exc_info:
            fields["error"] = mask_personal(self.formatException(record.exc_info))
        if self.as_json:
            return json.dumps(fields, ensure_ascii=False)
        return " ".join(f"{k}={_kv(v)}" for k, v in fields.items())


def _kv(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if not text or re.search(r'[\s"=]', text) else text


def setup_logging(level: str = "INFO", fmt: str = "kv") -> None:
    """Configure the root logger once for the process; quiet libraries that talk too much at INFO."""
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter(as_json=fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "alembic", "aiohttp.access", "httpx", "telegram.ext"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
