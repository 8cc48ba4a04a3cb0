"""Telegram staff groups: card buttons, replies to cards that reach the owner, and /open, /mine, /ticket."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.desk.group_cards import NUMBER_PATTERN
from bot.desk.staff_desk import StaffActionError, StaffRef, TicketLine
from config.i18n import label, t

if TYPE_CHECKING:
    from bot.channels.telegram.channel import TelegramChannel

CHANNEL = "telegram"


class TelegramStaff:
    def __init__(self, channel: "TelegramChannel"):
        self.channel = channel
        self.app = channel.app
        self.desk = channel.app.staff_desk
        self.lang = self.app.settings.staff_lang

    def t(self, key: str, **kw: Any) -> str:
        return t(self.lang, key, **kw)

    def group_handlers(self) -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
        groups = filters.ChatType.GROUPS
        return [CommandHandler(["open", "mine", "ticket"], self.on_command, filters=groups),
                MessageHandler(groups & filters.REPLY & (filters.TEXT | filters.PHOTO) & ~filters.COMMAND,
                               self.on_reply)]

    async def _staff(self, update: Update) -> StaffRef | None:
        user = update.effective_user
        if user is None:
            return None
        return await self.desk.staff_by_chat(CHANNEL, str(user.id))

    # -- card buttons ----------------------------------------------------------------------------------------
    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        parts = (query.data or "").split(":")
        if len(parts) < 3:
            await query.answer()
            return
        action, number, arg = parts[1], parts[2], (parts[3] if len(parts) > 3 else "")
        staff = await self._staff(update)
        if staff is None:
            await query.answer(self.t("staff.not_staff"), show_alert=True)
            return
        card = query.message
        if action == "contact":
            await query.answer(await self._contact(staff, number), show_alert=True)
        elif action == "reject":
            await query.answer()
            if card is None:
                return  # the card is too old to answer under
            await self._ask_reason(card.chat.id, number, card.message_id)
        elif action == "reassign" and not arg:
            await query.answer()
            if card is None:
                return
            await self._ask_assignee(staff, card.chat.id, number, card.message_id)
        else:
            error = await self._act(staff, number, action, assignee_id=int(arg) if arg.isdigit() else None)
            await query.answer(error or self.t("staff.done", action=label(self.lang, "action", action),
                                               number=number), show_alert=bool(error))

    async def _act(self, staff: StaffRef, number: str, action: str, note: str = "", photo: str = "",
                   assignee_id: int | None = None) -> str:
        """Apply a staff action; an error text, or "" when done."""
        try:
            await self.desk.act(staff, number, action, note=note, photo=photo, assignee_id=assignee_id,
                                channel=CHANNEL)
        except StaffActionError as exc:
            return self.t("staff.failed", error=str(exc))
        return ""

    async def _contact(self, staff: StaffRef, number: str) -> str:
        contact = await self.desk.contact(staff, number)
        if contact is None:
            return self.t("staff.ticket_unknown", number=number)
        if contact.hidden:
            return self.t("staff.contact_hidden")
        return self.t("staff.contact_alert", name=contact.name or "-", phone=contact.phone or "-")

    async def _ask_reason(self, chat_id: int, number: str, card_message_id: int) -> None:
        prompt = await self.channel.bot.send_message(
            chat_id, self.t("staff.reject_prompt", number=number), reply_markup=ForceReply(selective=False),
            reply_parameters=ReplyParameters(message_id=card_message_id, allow_sending_without_reply=True))
        await self._remember_prompt(chat_id, prompt.message_id, number)

    async def _ask_assignee(self, staff: StaffRef, chat_id: int, number: str, card_message_id: int) -> None:
        choices = await self.desk.assignee_choices(staff, number)
        rows = [[InlineKeyboardButton(st.name[:40], callback_data=f"tk:reassign:{number}:{st.id}")]
                for st in choices]
        await self.channel.bot.send_message(
            chat_id, self.t("staff.reassign_prompt", number=number), reply_markup=InlineKeyboardMarkup(rows),
            reply_parameters=ReplyParameters(message_id=card_message_id, allow_sending_without_reply=True))

    async def _remember_prompt(self, chat_id: int, message_id: int, number: str) -> None:
        await self.desk.remember_prompt(CHANNEL, str(chat_id), str(message_id), number)

    async def _prompted(self, chat_id: int, message_id: int) -> str | None:
        return await self.desk.prompted(CHANNEL, str(chat_id), str(message_id))

    # -- replies to the bot's messages -----------------------------------------------------------------------
    async def on_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
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

    async def _number_of(self, chat_id: int, replied: Message) -> str | None:
        """The ticket a bot message is about: its card, or a number written in it."""
        number = await self.desk.ticket_of_card(CHANNEL, str(chat_id), str(replied.message_id))
        if number:
            return number
        found = re.search(NUMBER_PATTERN, replied.text or replied.caption or "")
        return found.group(0) if found else None

    # -- group commands --------------------------------------------------------------------------------------
    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not message.text:
            return
        command = message.text.split()[0][1:].split("@")[0].lower()
        staff = await self._staff(update)
        if staff is None:
            await message.reply_text(self.t("staff.not_staff"))
            return
        if command == "ticket":
            await self._show_ticket(staff, message, context.args)
            return
        if command == "open":
            tickets = await self.desk.open_in_group(staff, CHANNEL, str(message.chat.id))
            header = "staff.open_header"
        else:
            tickets = await self.desk.assigned_to(staff)
            header = "staff.mine_header"
        if not tickets:
            await message.reply_text(self.t("staff.none"))
            return
        lines = [self.t(header, n=len(tickets))] + [self._line(tk) for tk in tickets]
        await message.reply_text("\n".join(lines)[:4096])

    def _line(self, tk: TicketLine) -> str:
        minutes = int((tk.due_at - self.app.clock.now()).total_seconds() // 60) if tk.due_at else 0
        left = self.t("staff.left", minutes=minutes) if minutes >= 0 else self.t("staff.late", minutes=-minutes)
        return self.t("staff.open_line", number=tk.number, urgency=label(self.lang, "urgency", tk.urgency),
                      category=label(self.lang, "category", tk.category),
                      status=label(self.lang, "status", tk.status), left=left)

    async def _show_ticket(self, staff: StaffRef, message: Message, args: list[str] | None) -> None:
        number = (args or [""])[0].strip().upper()
        if not re.fullmatch(NUMBER_PATTERN, number):
            await message.reply_text(self.t("staff.ticket_usage"))
            return
        card = await self.desk.group_card(staff, number, self.lang)
        await message.reply_text(card.text if card else self.t("staff.ticket_unknown", number=number))
