"""Talking to the conversation engine as an owner: a chat, a transcript check, and the desk set-up the flow tests
share."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from bot.clock import FrozenClock
from bot.conversation.engine import Engine, Sender
from bot.desk.demo_seed import seed_demo
from config.settings import Settings
from handlers.messages import Inbound
from models import Ticket
from models.db import make_engine, make_sessionmaker


async def make_desk(url: str, clock: FrozenClock, settings: Settings | None = None):
    """(database engine, sessionmaker, conversation Engine) over the demo data seeded into `url`."""
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    async with sm() as session, session.begin():
        await seed_demo(session, today=clock.local().date())
    settings = settings or Settings(database_url=url)
    return engine, sm, Engine(sm, settings, clock=clock)


class Chat:
    """One owner's chat with the engine: send messages, press the buttons offered, read the bot's answers."""

    def __init__(self, engine: Engine, user: str = "u1", channel: str = "test", lang: str | None = "zh"):
        self.engine = engine
        self.sender = Sender(channel=channel, chat_id=user, user_id=user, display_name=user, lang_hint=lang)
        self.last = []

    async def send(self, text: str = "", **kw) -> str:
        msg = Inbound(**kw) if kw else Inbound.text_or_command(text)
        self.last = await self.engine.handle(self.sender, msg)
        return "\n".join(r.text for r in self.last)

    async def choose(self, choice_id: str) -> str:
        offered = [c.id for r in self.last for c in r.choices]
        assert choice_id in offered, f"{choice_id!r} not offered: {offered}"
        return await self.send(kind="choice", choice=choice_id)

    async def choose_like(self, prefix: str) -> str:
        ids = [c.id for r in self.last for c in r.choices if c.id.startswith(prefix)]
        assert ids, f"no choice starting {prefix!r}"
        return await self.choose(ids[0])

    @property
    def choices(self) -> list[str]:
        return [c.id for r in self.last for c in r.choices]


@dataclass(frozen=True)
class Press:
    """In a transcript: press the offered button whose id is (or, with `like`, starts with) `choice`."""

    choice: str
    like: bool = False


@dataclass(frozen=True)
class Photo:
    """In a transcript: send a photo."""

    ref: str


async def verify_dialog(chat: Chat, turns: list[tuple]) -> list[str]:
    """Play a transcript: each turn is (what the owner does, what the answer must contain).

    What the owner does: a text (a command or words), a Press, or a Photo. What the answer must contain: a
    string, a list of strings (all of them), a compiled regex, or None (anything). The answers, in order. A
    failure names the turn, what was said and what came back.
    """
    answers = []
    for n, (said, expected) in enumerate(turns, 1):
        if isinstance(said, Press):
            out = await (chat.choose_like(said.choice) if said.like else chat.choose(said.choice))
        elif isinstance(said, Photo):
            out = await chat.send(kind="photo", photo_ref=said.ref)
        else:
            out = await chat.send(said)
        wanted = [] if expected is None else expected if isinstance(expected, list) else [expected]
        for want in wanted:
            found = want.search(out) if isinstance(want, re.Pattern) else want in out
            assert found, f"turn {n}: {said!r} answered\n{out}\n-- without {getattr(want, 'pattern', want)!r}"
        answers.append(out)
    return answers


async def bind(c: Chat, unit: str = "3-2-1502", phone: str = "13800000001") -> str:
    """Bind the owner's home (the demo's first estate); the last answer."""
    await c.send("/bind")
    await c.choose_like("estate:")
    await c.send(unit)
    return await c.send(phone)


async def tickets(engine: Engine) -> list[Ticket]:
    async with engine.sm() as s:
        return (await s.scalars(select(Ticket).order_by(Ticket.id))).all()


async def file_repair(c, text: str, place: str = "客厅") -> None:
    """An unbound owner files a non-emergency repair at a typed place, answering every question."""
    await c.send(text)
    await c.choose("ok")
    await c.send(place)
    await c.choose_like("estate:")
    await c.choose("done")
    await c.choose("vt:asap")
    await c.send("13912345678")
    await c.choose("submit")
