"""The channel-neutral message model: what an owner sends and what the bot answers."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Inbound:
    """One message from a chat, already translated from the platform's payload by an adapter."""

    kind: str  # text | choice | photo | location | command | unsupported
    text: str = ""
    choice: str = ""  # the id of a chosen option
    photo_ref: str = ""  # channel reference of a photo (file_id, media id, upload path)
    latitude: float | None = None
    longitude: float | None = None
    command: str = ""  # without the slash: "start", "cancel"
    args: str = ""  # what follows the command (deep-link payloads)
    raw_type: str = ""  # the platform's type name for unsupported input ("sticker", "voice")

    @classmethod
    def text_or_command(cls, text: str) -> "Inbound":
        text = (text or "").strip()
        if text.startswith("/") and len(text) > 1:
            head, _, rest = text[1:].partition(" ")
            return cls(kind="command", command=head.split("@")[0].lower(), args=rest.strip(), text=text)
        return cls(kind="text", text=text)


@dataclass
class Choice:
    id: str
    label: str


@dataclass
class Reply:
    """A text with optional choices: buttons on Telegram and the web chat, a numbered list on WeChat."""

    text: str
    choices: list[Choice] = field(default_factory=list)
    photo_ref: str = ""

    def as_dict(self) -> dict:
        # By hand: dataclasses.asdict deep-copies field by field, a measurable cost on every answer.
        return {"text": self.text, "choices": [{"id": c.id, "label": c.label} for c in self.choices],
                "photo_ref": self.photo_ref}

    @classmethod
    def from_dict(cls, data: dict) -> "Reply":
        return cls(text=data.get("text", ""), choices=[Choice(**c) for c in data.get("choices", [])],
                   photo_ref=data.get("photo_ref", ""))


def merge_replies(replies: list[Reply], limit: int) -> list[Reply]:
    """Fold a text-only reply into the next one, so one answer costs as few platform messages as it can.

    Fewer messages keep within flood limits and messaging quotas; a reply with a photo stays on its own.
    """
    merged: list[Reply] = []
    for reply in replies:
        prev = merged[-1] if merged else None
        if (prev is not None and not prev.choices and not prev.photo_ref and not reply.photo_ref
                and len(prev.text) + len(reply.text) + 2 <= limit):
            merged[-1] = Reply(text=f"{prev.text}\n\n{reply.text}", choices=reply.choices)
        else:
            merged.append(reply)
    return merged
