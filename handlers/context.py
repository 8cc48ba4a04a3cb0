"""The context a flow step works in: the stored state, the desk, and the replies it builds."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from config.i18n import label, t
from handlers.messages import Choice, Reply
from handlers.ports import Desk


@dataclass
class FlowSettings:
    duty_phone: str = "400-800-1234"
    office_name: str = "物业服务中心"
    max_text_length: int = 2000
    hurry_cooldown_minutes: int = 30


@dataclass
class Ctx:
    desk: Desk
    channel: str
    chat_id: str
    person_id: int
    lang: str
    flow: str = "menu"
    state: str = "idle"
    data: dict = field(default_factory=dict)
    now: datetime | None = None
    settings: FlowSettings = field(default_factory=FlowSettings)
    replies: list[Reply] = field(default_factory=list)

    def t(self, key: str, **kw: object) -> str:
        return t(self.lang, key, **kw)

    def label(self, group: str, value: str) -> str:
        return label(self.lang, group, value)

    def say(self, key: str, choices: list[tuple[str, str]] | None = None, **kw: object) -> None:
        """Reply with catalog text `key`; choices are (id, catalog key or literal label) pairs."""
        self.say_text(self.t(key, **kw), choices)

    def say_text(self, text: str, choices: list[tuple[str, str]] | None = None) -> None:
        opts = [Choice(cid, self._choice_label(lbl)) for cid, lbl in (choices or [])]
        self.replies.append(Reply(text=text, choices=opts))

    def _choice_label(self, lbl: str) -> str:
        try:
            return self.t(lbl)
        except KeyError:
            return lbl

    def goto(self, flow: str, state: str) -> None:
        self.flow, self.state = flow, state

    def finish(self) -> None:
        """Back to the menu; the flow's scratch data is dropped."""
        self.flow, self.state = "menu", "idle"
        self.data = {}
