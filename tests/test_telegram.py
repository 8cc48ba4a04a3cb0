"""Telegram end to end: the real python-telegram-bot stack over HTTP against a fake Bot API on loopback."""
from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from sqlalchemy import select

from bot.channels.telegram.channel import TelegramChannel, split_text
from bot.desk.staff_accounts import add_staff
from config.settings import Settings
from models import Attachment, OutboxMessage, Ticket
from tests.fakes import telegram_api as tg
from tests.running import Running
from tests.waiting import wait_for

GROUP = -1001
OWNER = tg.user(501, "张伟")
STRANGER = tg.user(999, "Passer-by")
TECH = tg.user(601, "Wang", lang="zh")


class Harness:
    """propdesk with its Telegram channel and delivery worker, wired to a fake Bot API."""

    def __init__(self, fake: tg.FakeBotAPI, run: Running):
        self.fake, self.run, self.app = fake, run, run.app
        self.channel = run.channel(TelegramChannel)

    async def handled(self, *updates: dict) -> None:
        """Push updates as Telegram would, and wait until propdesk has handled them all: the bot has fetched them
        (it polled again past the last) and PTB's update queue is worked off. Direct answers are sent by then;
        what goes through the outbox (cards, notices to other chats) is waited for on its own."""
        pushed = [self.fake.push(update) for update in updates]
        await self.fake.wait_for(lambda f: f.acknowledged(pushed[-1]), what=f"the bot to fetch {pushed[-1]}")
        await wait_for(self.channel.ptb.update_queue.join(), what=f"propdesk to handle {pushed}")

    async def send(self, update: dict, chat_id: int) -> str:
        """Push an update; what the bot answered in `chat_id` while handling it (it must answer)."""
        before = len(self.fake.texts(chat_id))
        await self.handled(update)
        answer = await self.fake.wait_for(lambda f: f.texts(chat_id)[before:], what=f"an answer in chat {chat_id}")
        return "\n".join(answer)

    async def say(self, who: dict, body: str, chat_id: int | None = None) -> str:
        chat_id = chat_id or who["id"]
        return await self.send(tg.text(chat_id, who, body), chat_id)

    def last_with_buttons(self, chat_id: int) -> dict:
        return next(m for (c, _), m in reversed(self.fake.messages.items()) if c == chat_id and m.get("reply_markup"))

    def buttons(self, chat_id: int) -> list[str]:
        markup = self.last_with_buttons(chat_id)["reply_markup"]
        return [b["callback_data"] for row in markup["inline_keyboard"] for b in row]

    async def press(self, who: dict, data: str, chat_id: int | None = None, on: dict | None = None) -> str:
        """Press the button starting `data` (on the chat's last message with buttons, or `on`); what the bot said in
        the chat while handling it."""
        chat_id = chat_id or who["id"]
        on = on or self.last_with_buttons(chat_id)
        offered = [b["callback_data"] for row in on["reply_markup"]["inline_keyboard"] for b in row]
        assert any(o.startswith(data) for o in offered), f"{data} not in {offered}"
        data = next(o for o in offered if o.startswith(data))
        before = len(self.fake.texts(chat_id))
        answers = len(self.fake.of("answerCallbackQuery"))
        await self.handled(tg.callback(who, on, data))
        assert len(self.fake.of("answerCallbackQuery")) > answers, "the button press was not answered"
        return "\n".join(self.fake.texts(chat_id)[before:])

    def since(self, chat_id: int, before: int, *words: str) -> list[str]:
        """The chat's texts after the first `before` that contain every one of `words`."""
        return [t for t in self.fake.texts(chat_id)[before:] if all(w in t for w in words)]

    async def outbox_left(self) -> list[tuple]:
        async with self.app.sessionmaker() as s:
            rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.status != "sent"))).all()
        return [(r.status, r.chat_id, r.kind, r.payload, r.last_error) for r in rows]

    async def outbox_drained(self) -> bool:
        return not await self.outbox_left()

    async def ticket(self, number: str) -> Ticket:
        async with self.app.sessionmaker() as s:
            return await s.scalar(select(Ticket).where(Ticket.number == number))

    def card(self, number: str) -> dict:
        return next(m for (c, _), m in self.fake.messages.items() if c == GROUP and number in m.get("text", "")
                    and m.get("reply_markup"))


@pytest.fixture
async def harnesses(propdesk, fakes):
    """Make harnesses (fake Bot API options in `fake`, settings as keywords); stopped after the test."""

    async def make(fake: dict | None = None, **overrides) -> Harness:
        api = await fakes.start(tg.FakeBotAPI(**(fake or {})))
        run = await propdesk([TelegramChannel], **{
            "telegram_token": api.token, "telegram_api_base_url": api.url, "delivery_backoff_seconds": 0.2,
            "staff_groups": {"repairs": {"channel": "telegram", "chat_id": str(GROUP)}}, **overrides})
        return Harness(api, run)

    return make


@pytest.fixture
async def harness(harnesses):
    return await harnesses()


async def link_staff(h: Harness, who: dict, name="王师傅 Master Wang", phone="13900000001") -> str:
    async with h.app.sessionmaker() as s, s.begin():
        _, code = await add_staff(s, h.app.clock, name=name, phone=phone, role="technician", trade="plumber")
    return await h.say(who, f"/link {code}")


async def test_commands_registered_in_both_languages(harness):
    calls = harness.fake.of("setMyCommands")
    langs = {c.get("language_code") for c in calls}
    assert {"zh", "en", None} <= langs
    zh = next(c for c in calls if c.get("language_code") == "zh" and c["scope"]["type"] == "all_private_chats")
    assert {"command": "repair", "description": "报修"} in zh["commands"]
    assert {c["command"] for c in zh["commands"]} >= {"start", "repair", "complain", "fees", "mytickets", "bind",
                                                      "cancel", "help", "lang"}


async def test_owner_repair_to_staff_group_and_back(harness):
    h = harness
    out = await h.say(OWNER, "/start")
    assert "欢迎" in out and "repair" in h.buttons(OWNER["id"])
    # Bind the home, then report a dripping tap with a photo.
    await h.say(OWNER, "/bind")
    await h.press(OWNER, "estate:")
    await h.say(OWNER, "3-2-1502")
    assert "绑定成功" in await h.say(OWNER, "13800000001")
    out = await h.say(OWNER, "厨房水龙头一直滴水，拧紧了也滴")
    assert "水路" in out
    await h.press(OWNER, "ok")
    await h.press(OWNER, "unit:")
    assert "第 1 张" in await h.send(tg.photo(OWNER["id"], OWNER, "owner-photo-1"), OWNER["id"])
    await h.press(OWNER, "done")
    await h.press(OWNER, "vt:tomorrow_am")
    await h.press(OWNER, "use_known")
    out = await h.press(OWNER, "submit")
    number = re.search(r"BX-\d{8}-\d{4}", out).group(0)

    # One card in the staff group, with buttons and the owner's photo under it; the phone masked.
    await h.fake.wait_for(lambda f: any(number in t for t in f.texts(GROUP)))
    card = h.card(number)
    assert "待接单" in card["text"] and "138****0001" in card["text"] and "13800000001" not in card["text"]
    assert f"tk:claim:{number}" in [b["callback_data"] for row in card["reply_markup"]["inline_keyboard"]
                                    for b in row]
    photos = await h.fake.wait_for(lambda f: f.of("sendPhoto", GROUP))
    assert photos[0]["photo"] == "owner-photo-1" and photos[0]["reply_parameters"]["message_id"] == card["message_id"]

    # Someone who is not staff presses Claim: an alert, and nothing changes.
    await h.press(STRANGER, "tk:claim", chat_id=GROUP, on=card)
    alert = h.fake.of("answerCallbackQuery")[-1]
    assert alert.get("show_alert") in (True, "true") and "员工" in alert["text"]
    assert (await h.ticket(number)).status == "new"

    # A linked technician claims: the card is edited in place and the owner hears who took it.
    assert "已关联员工账号" in await link_staff(h, TECH)
    owner_before = len(h.fake.texts(OWNER["id"]))
    await h.press(TECH, "tk:claim", chat_id=GROUP, on=h.card(number))
    assert (await h.ticket(number)).status == "assigned"
    await h.fake.wait_for(lambda f: h.since(OWNER["id"], owner_before, "接单", "王师傅"))
    await h.fake.wait_for(lambda f: "已接单" in f.messages[(GROUP, card["message_id"])]["text"])
    edits = [e for e in h.fake.of("editMessageText", GROUP) if int(e["message_id"]) == card["message_id"]]
    assert edits and len([m for m in h.fake.texts(GROUP) if number in m and "描述" in m]) == 1

    # The technician replies to the card with a completion photo: it reaches the owner, and is kept.
    await h.handled(tg.photo(GROUP, TECH, "done-photo-9", caption="已更换阀芯", reply_to=h.card(number)))
    [to_owner] = await h.fake.wait_for(lambda f: f.of("sendPhoto", OWNER["id"]))
    assert to_owner["photo"] == "done-photo-9" and "已更换阀芯" in to_owner["caption"]
    assert "Wang" not in to_owner["caption"] and "601" not in str(to_owner)
    async with h.app.sessionmaker() as s:
        refs = (await s.scalars(select(Attachment.ref))).all()
    assert "tg:done-photo-9" in refs and "tg:owner-photo-1" in refs

    # The owner answers through the Reply button: it comes back under the card.
    await h.press(OWNER, f"reply:{number}")
    group_before = len(h.fake.texts(GROUP))
    await h.say(OWNER, "好的谢谢师傅")
    await h.fake.wait_for(lambda f: h.since(GROUP, group_before, "好的谢谢师傅", number))
    under = [c for c in h.fake.of("sendMessage", GROUP) if "好的谢谢师傅" in c["text"]][0]
    assert under["reply_parameters"]["message_id"] == card["message_id"]

    # Resolve; the owner gets a rating button and rates 5: the ticket is closed.
    owner_before = len(h.fake.texts(OWNER["id"]))
    await h.press(TECH, "tk:resolve", chat_id=GROUP, on=h.card(number))
    await h.fake.wait_for(lambda f: h.since(OWNER["id"], owner_before, "处理完成"))
    await h.press(OWNER, f"rate:{number}")
    await h.press(OWNER, "star:5")
    assert "感谢" in await h.press(OWNER, "skip")
    tk = await h.ticket(number)
    assert (tk.status, tk.rating) == ("closed", 5)
    await h.fake.wait_for(lambda f: "已关闭" in f.messages[(GROUP, card["message_id"])]["text"])
    # Nothing is left behind (the card is edited before its outbox row is marked sent: wait for that too).
    await wait_for(h.outbox_drained, what="every outbox message sent", show=h.outbox_left)


async def test_reject_asks_for_a_reason_and_reassign_offers_staff(harness):
    h = harness
    await link_staff(h, TECH)
    await h.say(OWNER, "/repair")
    out = await h.say(OWNER, "电梯困人了，快来")
    number = re.search(r"BX-\d{8}-\d{4}", out).group(0)
    await h.fake.wait_for(lambda f: any(number in t for t in f.texts(GROUP)))
    await h.press(TECH, "tk:reject", chat_id=GROUP, on=h.card(number))
    prompt = await h.fake.wait_for(lambda f: [m for (c, _), m in f.messages.items()
                                              if c == GROUP and "退单原因" in m.get("text", "")])
    asked = [c for c in h.fake.of("sendMessage", GROUP) if "退单原因" in c["text"]]
    assert asked[0]["reply_markup"]["force_reply"] is True
    assert (await h.ticket(number)).status == "new"
    await h.send(tg.text(GROUP, TECH, "不是本小区的电梯", reply_to=prompt[0]), GROUP)
    tk = await h.ticket(number)
    assert tk.status == "rejected" and tk.reject_reason == "不是本小区的电梯"
    await h.fake.wait_for(lambda f: "不是本小区的电梯" in f.messages[(GROUP, h.card(number)["message_id"])]["text"])
    # Claim again, then reassign to another member of staff by button.
    await h.press(TECH, "tk:claim", chat_id=GROUP, on=h.card(number))
    await h.fake.wait_for(lambda f: "tk:reassign" in str(h.card(number)["reply_markup"]))
    await h.press(TECH, "tk:reassign", chat_id=GROUP, on=h.card(number))
    choices = await h.fake.wait_for(lambda f: [m for (c, _), m in f.messages.items()
                                               if c == GROUP and "转派给谁" in m.get("text", "")])
    staff_buttons = [b["callback_data"] for row in choices[0]["reply_markup"]["inline_keyboard"] for b in row]
    assert len(staff_buttons) >= 3
    await h.press(TECH, staff_buttons[1], chat_id=GROUP, on=choices[0])
    tk = await h.ticket(number)
    assert tk.status == "assigned" and tk.assignee_id == int(staff_buttons[1].rsplit(":", 1)[1])


async def test_group_commands_and_contact_button(harness):
    h = harness
    assert "员工" in await h.say(STRANGER, "/open", chat_id=GROUP)
    await link_staff(h, TECH)
    assert "没有未完成" in await h.say(TECH, "/open", chat_id=GROUP)
    await h.say(OWNER, "/repair")
    out = await h.say(OWNER, "楼道里好大一股煤气味")
    number = re.search(r"BX-\d{8}-\d{4}", out).group(0)
    await h.fake.wait_for(lambda f: any(number in t for t in f.texts(GROUP)))
    listing = await h.say(TECH, "/open", chat_id=GROUP)
    assert number in listing and "紧急" in listing and "剩余" in listing
    assert "没有未完成" in await h.say(TECH, "/mine", chat_id=GROUP)
    await h.press(TECH, "tk:claim", chat_id=GROUP, on=h.card(number))
    assert number in await h.say(TECH, "/mine", chat_id=GROUP)
    assert "描述" in await h.say(TECH, f"/ticket {number}", chat_id=GROUP)
    assert "用法" in await h.say(TECH, "/ticket nonsense", chat_id=GROUP)
    # The full phone number only in an alert, and only for staff.
    await h.press(STRANGER, "tk:contact", chat_id=GROUP, on=h.card(number))
    assert "员工" in h.fake.of("answerCallbackQuery")[-1]["text"]


async def test_deep_link_starts_a_repair_at_the_place(harness):
    out = await harness.say(OWNER, "/start sg-lift-3a")
    assert "电梯轿厢" in out


async def test_unsupported_messages_and_bad_link_codes(harness):
    h = harness
    sticker = tg.message(OWNER["id"], OWNER, sticker={"file_id": "st", "file_unique_id": "st", "width": 1,
                                                      "height": 1, "is_animated": False, "is_video": False,
                                                      "type": "regular"})
    assert "sticker" in await h.send(sticker, OWNER["id"])
    assert "无效" in await h.say(STRANGER, "/link WRONG123")
    assert "/link" in await h.say(STRANGER, "/link")
    # In a group, a reply to the bot from someone who is not staff is refused; staff talking among
    # themselves (replies to each other) is left alone.
    bot_message = {"message_id": 1, "date": 0, "chat": {"id": GROUP, "type": "supergroup"}, "from": tg.BOT,
                   "text": "BX-20261125-0001"}
    assert "员工" in await h.send(tg.text(GROUP, STRANGER, "hello", reply_to=bot_message), GROUP)
    await link_staff(h, TECH)
    human = {**bot_message, "from": STRANGER}
    before = len(h.fake.calls)
    # A later message the bot does answer (/open) marks that the first has been handled too: by then the bot
    # must have said nothing else.
    await h.handled(tg.text(GROUP, TECH, "收到", reply_to=human), tg.text(GROUP, TECH, "/open"))
    sent = [c.params.get("text", "") for c in h.fake.calls[before:] if c.method in tg.SEND_METHODS]
    assert len(sent) == 1 and "没有未完成" in sent[0], sent


async def test_flood_limit_429_is_retried_and_nothing_lost(harness):
    h = harness
    h.fake.fail("sendMessage", times=2, code=429, retry_after=1)
    out = await h.say(OWNER, "/start")
    assert "欢迎" in out
    assert h.fake.too_many_requests == 2


async def test_bot_api_down_keeps_the_ticket_and_retries_the_reply(harness):
    h = harness
    h.fake.fail("sendMessage", times=1, code=500, description="Internal Server Error")
    h.fake.push(tg.text(OWNER["id"], OWNER, "电梯困人了，快来"))
    texts = await h.fake.wait_for(lambda f: [t for t in f.texts(OWNER["id"]) if "BX-" in t], timeout=15)
    number = re.search(r"BX-\d{8}-\d{4}", texts[0]).group(0)
    assert (await h.ticket(number)).urgency == "emergency"


def test_split_text_keeps_every_character_under_the_limit():
    text = "\n".join(f"第{i}行 " + "字" * 50 for i in range(300))
    pieces = split_text(text)
    assert all(len(p) <= 4096 for p in pieces) and len(pieces) > 1
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert split_text("x" * 9000) == ["x" * 4096, "x" * 4096, "x" * 808]
    assert split_text("") == [""]


async def test_webhook_checks_the_secret(harnesses):
    h = await harnesses(telegram_webhook_url="https://desk.example.com/telegram/webhook",
                        telegram_webhook_secret="s3cret-token")
    hook = h.fake.of("setWebhook")[0]
    assert hook["secret_token"] == "s3cret-token" and hook["url"].endswith("/telegram/webhook")
    assert not h.fake.of("getUpdates")
    update = {"update_id": 1, **tg.text(OWNER["id"], OWNER, "/start")}
    url = h.run.base + "/telegram/webhook"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(url, json=update, headers=headers) as resp:
                assert resp.status == 403
        async with http.post(url, data=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token":
                                                              "s3cret-token"}) as resp:
            assert resp.status == 400
        async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token":
                                                        "s3cret-token"}) as resp:
            assert resp.status == 200
    # The update is queued when the POST is answered; once it is handled, the owner has one welcome: the refused
    # POSTs (the same update) were never handled.
    await wait_for(h.channel.ptb.update_queue.join(), what="the webhook's update to be handled")
    texts = await h.fake.wait_for(lambda f: f.texts(OWNER["id"]))
    assert len([t for t in texts if "欢迎" in t]) == 1, texts


async def test_emergency_while_the_group_is_flooded_and_no_429_is_provoked(harnesses):
    from bot.desk.ticket_service import TicketService

    h = await harnesses(fake={"group_limit": 3, "group_period": 2}, telegram_group_limit=3,
                        telegram_group_period_seconds=2)
    fake = h.fake

    # The group's window is full (three cards just went out) and eight more ordinary tickets wait; then an
    # owner reports people trapped in a lift.
    async def ordinary(n: int) -> list[str]:
        async with h.app.sessionmaker() as s, s.begin():
            svc = TicketService(s, h.app.clock, h.app.engine.dispatch)
            made = [(await svc.create(kind="repair", category="public_facility", urgency="normal",
                                      channel="web", description=f"楼道灯不亮 {i}", reporter_id=None,
                                      actor="test")).number for i in range(n)]
        h.app.wake_delivery()
        return made

    normal = await ordinary(3)
    await fake.wait_for(lambda f: len(f.texts(GROUP)) >= 3)
    normal += await ordinary(8)
    began = asyncio.get_running_loop().time()
    out = await h.say(OWNER, "电梯困人了，快来")
    number = re.search(r"BX-\d{8}-\d{4}", out).group(0)
    # The owner was answered at once, not after the group's backlog.
    assert asyncio.get_running_loop().time() - began < 1.5
    await fake.wait_for(lambda f: all(n in "\n".join(f.texts(GROUP)) for n in normal + [number]), timeout=20)
    # Everything reached the group within two windows, merged where needed, and no 429 was provoked.
    assert asyncio.get_running_loop().time() - began < 5 and fake.too_many_requests == 0


async def test_propdesk_run_starts_the_telegram_channel_when_its_token_is_set(tmp_path, db_url, fakes):
    from bot.runner import serve

    fake = await fakes.start(tg.FakeBotAPI())
    settings = Settings(database_url=db_url, http_port=0, telegram_token=fake.token,
                        telegram_api_base_url=fake.url, upload_dir=str(tmp_path / "up"),
                        staff_groups={"repairs": {"channel": "telegram", "chat_id": str(GROUP)}})
    stop = asyncio.Event()
    server = asyncio.create_task(serve(settings, demo=True, stop=stop))
    try:
        await fake.wait_for(lambda f: f.of("getUpdates"))
        fake.push(tg.text(OWNER["id"], OWNER, "楼道里好大一股煤气味"))
        texts = await fake.wait_for(lambda f: [t for t in f.texts(OWNER["id"]) if "BX-" in t])
        number = re.search(r"BX-\d{8}-\d{4}", texts[0]).group(0)
        # The delivery worker started by `run` posts the card to the staff group.
        await fake.wait_for(lambda f: [t for t in f.texts(GROUP) if number in t])
    finally:
        stop.set()
        await wait_for(server, timeout=15, what="propdesk run to stop")


async def test_a_burst_goes_out_as_digests_whose_buttons_work(harnesses):
    from bot.desk.ticket_service import TicketService

    h = await harnesses(fake={"group_limit": 3, "group_period": 2}, telegram_group_limit=3,
                        telegram_group_period_seconds=2)
    fake = h.fake
    async with h.app.sessionmaker() as s, s.begin():
        svc = TicketService(s, h.app.clock, h.app.engine.dispatch)
        numbers = [(await svc.create(kind="repair", category="public_facility", urgency="normal",
                                     channel="web", description=f"灯不亮 {i}", reporter_id=None,
                                     actor="test")).number for i in range(60)]
    h.app.wake_delivery()
    began = asyncio.get_running_loop().time()
    await fake.wait_for(lambda f: all(n in "\n".join(f.texts(GROUP)) for n in numbers), timeout=20)
    # 60 cards one by one would take 20 windows (40 s); as digests the group has them all within a few.
    assert asyncio.get_running_loop().time() - began < 8 and fake.too_many_requests == 0
    digest = next(m for (c, _), m in fake.messages.items() if c == GROUP and "张新工单" in m.get("text", ""))
    buttons = [b["callback_data"] for row in digest["reply_markup"]["inline_keyboard"] for b in row]
    assert len(buttons) >= 2 and all(b.startswith("tk:claim:") for b in buttons)
    # Claiming from the digest works, and the ticket then gets a card of its own.
    await link_staff(h, TECH)
    target = buttons[0].rsplit(":", 1)[1]
    await h.press(TECH, buttons[0], chat_id=GROUP, on=digest)
    assert (await h.ticket(target)).status == "assigned"
    await fake.wait_for(lambda f: any(target in t and "已接单" in t for t in f.texts(GROUP)), timeout=10)


async def test_a_thousand_tickets_reach_a_group_that_takes_twenty_a_minute(harnesses):
    from bot.desk.ticket_service import TicketService

    h = await harnesses(fake={"group_limit": 20, "group_period": 60})  # Telegram's own group limit
    async with h.app.sessionmaker() as s, s.begin():
        svc = TicketService(s, h.app.clock, h.app.engine.dispatch)
        numbers = [(await svc.create(kind="repair", category="public_facility", urgency="normal", channel="web",
                                     description=f"灯不亮 {i}", reporter_id=None, actor="test")).number
                   for i in range(1000)]
    h.app.wake_delivery()
    await h.fake.wait_for(lambda f: all(n in "\n".join(f.texts(GROUP)) for n in numbers), timeout=50,
                          what="all 1000 tickets in the group")
    assert len(h.fake.texts(GROUP)) <= 20 and h.fake.too_many_requests == 0  # within one minute's allowance
