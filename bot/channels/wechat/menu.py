"""The official account's custom menu: its CLICK keys are the ones bot.channels.wechat turns into commands."""
from typing import Any

MENU: dict[str, list[dict[str, Any]]] = {"button": [
    {"type": "click", "name": "🔧 报修", "key": "repair"},
    {"type": "click", "name": "📢 投诉", "key": "complaint"},
    {"name": "🏠 我的", "sub_button": [
        {"type": "click", "name": "缴费查询", "key": "fees"},
        {"type": "click", "name": "我的工单", "key": "mytickets"},
        {"type": "click", "name": "绑定房屋", "key": "bind"},
        {"type": "click", "name": "English", "key": "lang"},
    ]},
]}
