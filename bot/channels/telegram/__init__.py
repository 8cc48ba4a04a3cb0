"""Telegram: owners' private chats and staff groups, over the Bot API."""
