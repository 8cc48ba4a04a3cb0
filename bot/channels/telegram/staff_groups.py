"""Telegram staff groups: card buttons, replies to cards that reach the owner, and /open, /mine, /ticket."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters, Update
from telegram.ext import CommandHandler, ContextTypes, MessageHandler, filters

from bot.desk.group_cards import NUMBER_PATTERN, build_group_card
from bot.desk.staff_accounts import staff_of
from bot.desk.staff_actions import StaffActionError, act
from handlers.common import mask_phone
from config.i18n import label, t
from models import Conversation, Person, Staff, StaffEstate, Ticket, PostedCard
from models.lifecycle import OPEN_STATUSES

if TYPE_CHECKING:
    from bot.channels.telegram.channel import TelegramChannel

CHANNEL = "telegram"
MAX_PROMPTS = 50  # reject-reason prompts remembered per group


class TelegramStaff:
    def __init__(self, channel: "TelegramChannel"):
        self.channel = channel
        self.app = channel.app
        self.lang = self.app.settings.staff_lang

    def t(self, key: str, **kw) -> str:
        return t(self.lang, key, **kw)

    def group_handlers(self) -> list:
        groups = filters.ChatType.GROUPS
        return [CommandHandler(["open", "mine", "ticket"], self.on_command, filters=groups),
                MessageHandler(groups & filters.REPLY & (filters.TEXT | filters.PHOTO) & ~filters.COMMAND,
                               self.on_reply)]

    async def _staff(self, update: Update) -> Staff | None:
        async with self.app.sessionmaker() as s:
            return await staff_of(s, CHANNEL, str(update.effective_user.id))

    # -- card buttons ----------------------------------------------------------------------------------------
    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        parts = (query.data or "").split(":")
        if len(parts) < 3:
            await query.answer()
            return
        action, number, arg = parts[1], parts[2], (parts[3] if len(parts) > 3 else "")
        staff = await self._staff(update)
        if staff is None:
            await query.answer(self.t("staff.not_staff"), show_alert=True)
            return
        chat_id = query.message.chat.id if query.message else None
        if action == "contact":
            await query.answer(await self._contact(number), show_alert=True)
        elif action == "reject":
            await query.answer()
            await self._ask_reason(chat_id, number, query.message.message_id)
        elif action == "reassign" and not arg:
            await query.answer()
            await self._ask_assignee(chat_id, number, query.message.message_id)
        else:
            error = await self._act(staff, number, action, assignee_id=int(arg) if arg.isdigit() else None)
            await query.answer(error or self.t("staff.done", action=label(self.lang, "action", action),
                                               number=number), show_alert=bool(error))

    async def _act(self, staff: Staff, number: str, action: str, note: str = "", photo: str = "",
                   assignee_id: int | None = None) -> str:
        """Apply a staff action; an error text, or "" when done."""
        try:
            async with self.app.sessionmaker() as s, s.begin():
                await act(s, self.app.clock, number=number, staff_id=staff.id, action=action, note=note,
                          photo=photo, assignee_id=assignee_id, channel=CHANNEL, dispatch=self.app.engine.dispatch)
        except StaffActionError as exc:
            return self.t("staff.failed", error=str(exc))
        self.app.wake_delivery()
        return ""

    async def _contact(self, number: str) -> str:
        async with self.app.sessionmaker() as s:
            ticket = await s.scalar(select(Ticket).where(Ticket.number == number))
            if ticket is None:
                return self.t("staff.ticket_unknown", number=number)
            if ticket.anonymous:
                return self.t("staff.contact_hidden")
            person = await s.get(Person, ticket.reporter_id) if ticket.reporter_id else None
            return self.t("staff.contact_alert", name=person.name if person else "-",
                          phone=ticket.contact_phone or (person.phone if person else "") or "-")

    async def _ask_reason(self, chat_id: int, number: str, card_message_id: int) -> None:
        prompt = await self.channel.bot.send_message(
            chat_id, self.t("staff.reject_prompt", number=number), reply_markup=ForceReply(selective=False),
            reply_parameters=ReplyParameters(message_id=card_message_id, allow_sending_without_reply=True))
        await self._remember_prompt(chat_id, prompt.message_id, number)

    async def _ask_assignee(self, chat_id: int, number: str, card_message_id: int) -> None:
        async with self.app.sessionmaker() as s:
            ticket = await s.scalar(select(Ticket).where(Ticket.number == number))
            q = select(Staff).where(Staff.active.is_(True)).options(selectinload(Staff.person)).order_by(Staff.id)
            if ticket is not None and ticket.estate_id:
                q = q.join(StaffEstate, StaffEstate.staff_id == Staff.id).where(
                    StaffEstate.estate_id == ticket.estate_id)
            staff = (await s.scalars(q)).all()
        rows = [[InlineKeyboardButton(st.person.name[:40], callback_data=f"tk:reassign:{number}:{st.id}")]
                for st in staff[:20]]
        await self.channel.bot.send_message(
            chat_id, self.t("staff.reassign_prompt", number=number), reply_markup=InlineKeyboardMarkup(rows),
            reply_parameters=ReplyParameters(message_id=card_message_id, allow_sending_without_reply=True))

    async def _remember_prompt(self, chat_id: int, message_id: int, number: str) -> None:
        """Which reject prompt asks about which ticket, kept with the group's conversation row."""
        async with self.app.sessionmaker() as s, s.begin():
            conv = await s.get(Conversation, (CHANNEL, str(chat_id)))
            if conv is None:
                conv = Conversation(channel=CHANNEL, chat_id=str(chat_id), flow="staff", state="group", data={},
                                    updated_at=self.app.clock.now())
                s.add(conv)
            prompts = dict((conv.data or {}).get("reject_prompts", {}))
            prompts[str(message_id)] = number
            conv.data = {**(conv.data or {}), "reject_prompts": dict(list(prompts.items())[-MAX_PROMPTS:])}
            conv.updated_at = self.app.clock.now()

    async def _prompted(self, chat_id: int, message_id: int) -> str | None:
        async with self.app.sessionmaker() as s:
            conv = await s.get(Conversation, (CHANNEL, str(chat_id)))
            return ((conv.data or {}).get("reject_prompts", {}) if conv else {}).get(str(message_id))

    # -- replies to the bot's messages -----------------------------------------------------------------------
    async def on_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        replied = message.reply_to_message
        if replied is None or replied.from_user is None or replied.from_user.id != self.channel.bot.id:
            return  # staff talking among themselves
        staff = await self._staff(update)
        if staff is None:
            await message.reply_text(self.t("staff.not_staff"))
            return
        chat_id = message.chat.id
        text = (message.text or message.caption or "").strip()
        photo = "tg:" + message.photo[-1].file_id if message.photo else ""
        rejecting = await self._prompted(chat_id, replied.message_id)
        if rejecting and text:
            error = await self._act(staff, rejecting, "reject", note=text)
            await message.reply_text(error or self.t("staff.done", action=label(self.lang, "action", "reject"),
                                                     number=rejecting))
            return
        number = await self._number_of(chat_id, replied)
        if number is None:
            await message.reply_text(self.t("staff.no_ticket_here"))
            return
        error = await self._act(staff, number, "comment", note=text, photo=photo)
        await message.reply_text(error or self.t("staff.relayed", number=number))

    async def _number_of(self, chat_id: int, replied) -> str | None:  # noqa: ANN001
        """The ticket a bot message is about: its card, or a number written in it."""
        async with self.app.sessionmaker() as s:
            number = await s.scalar(select(Ticket.number).join(PostedCard, PostedCard.ticket_id == Ticket.id)
                                    .where(PostedCard.channel == CHANNEL, PostedCard.chat_id == str(chat_id),
                                           PostedCard.message_id == str(replied.message_id)))
        if number:
            return number
        found = re.search(NUMBER_PATTERN, replied.text or replied.caption or "")
        return found.group(0) if found else None

    # -- group commands --------------------------------------------------------------------------------------
    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        command = message.text.split()[0][1:].split("@")[0].lower()
        staff = await self._staff(update)
        if staff is None:
            await message.reply_text(self.t("staff.not_staff"))
            return
        if command == "ticket":
            await self._show_ticket(message, context.args)
            return
        async with self.app.sessionmaker() as s:
            q = select(Ticket).where(Ticket.status.in_([str(x) for x in OPEN_STATUSES])).order_by(Ticket.id)
            if command == "open":
                q = q.join(PostedCard, PostedCard.ticket_id == Ticket.id).where(
                    PostedCard.channel == CHANNEL, PostedCard.chat_id == str(message.chat.id))
                header = "staff.open_header"
            else:
                q = q.where(Ticket.assignee_id == staff.id)
                header = "staff.mine_header"
            tickets = (await s.scalars(q.limit(50))).all()
        if not tickets:
            await message.reply_text(self.t("staff.none"))
            return
        lines = [self.t(header, n=len(tickets))] + [self._line(tk) for tk in tickets]
        await message.reply_text("\n".join(lines)[:4096])

    def _line(self, tk: Ticket) -> str:
        due = tk.claim_due_at if tk.status in ("new", "rejected", "reopened") else tk.resolve_due_at
        minutes = int((due - self.app.clock.now()).total_seconds() // 60) if due else 0
        left = self.t("staff.left", minutes=minutes) if minutes >= 0 else self.t("staff.late", minutes=-minutes)
        return self.t("staff.open_line", number=tk.number, urgency=label(self.lang, "urgency", tk.urgency),
                      category=label(self.lang, "category", tk.category),
                      status=label(self.lang, "status", tk.status), left=left)

    async def _show_ticket(self, message, args: list[str] | None) -> None:  # noqa: ANN001
        number = (args or [""])[0].strip().upper()
        if not re.fullmatch(NUMBER_PATTERN, number):
            await message.reply_text(self.t("staff.ticket_usage"))
            return
        async with self.app.sessionmaker() as s:
            ticket = await s.scalar(select(Ticket).where(Ticket.number == number))
            card = await build_group_card(s, ticket, self.app.clock, self.lang) if ticket else None
        await message.reply_text(card.text if card else self.t("staff.ticket_unknown", number=number))
