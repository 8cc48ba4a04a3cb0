"""Binding asks who the person is (name, relation) when staff must decide; the roster's match needs neither."""
from __future__ import annotations

from sqlalchemy import select

from bot.desk import bindings
from models import Binding, Person
from tests.helpers.dialog import bind


async def test_unknown_phone_asks_name_and_relation_before_staff_see_it(chat, desk_engine):
    c = chat()
    out = await bind(c, "3-2-1502", "13111111111")
    assert "怎么称呼" in out
    async with desk_engine.sm() as s:
        assert (await s.scalars(select(Binding))).all() == []  # nothing for staff until they say who they are
    out = await c.send("李雷")
    assert "什么关系" in out and c.choices == ["rel:owner", "rel:family", "rel:tenant"]
    out = await c.choose("rel:tenant")
    assert "已提交 3-2-1502 的绑定申请" in out
    async with desk_engine.sm() as s:
        [binding] = (await s.scalars(select(Binding))).all()
        assert (binding.status, binding.name, binding.relation) == ("pending", "李雷", "tenant")
        assert (await s.get(Person, binding.person_id)).name == "李雷"
        [request] = await bindings.pending(s)
    assert request["person"] == "李雷（租户）" and request["relation"] == "tenant" and "Guest" not in request["person"]


async def test_roster_match_binds_with_the_roster_relation(chat, desk_engine):
    c = chat()
    assert "绑定成功" in await bind(c, "3-2-1502", "13800000001")
    async with desk_engine.sm() as s:
        [binding] = (await s.scalars(select(Binding))).all()
        assert (binding.status, binding.relation) == ("active", "owner")


async def test_relation_in_english(chat, desk_engine):
    c = chat("en", lang="en")
    await bind(c, "1-1-101", "13122223333")
    await c.send("Li Lei")
    out = await c.choose("rel:family")
    assert "staff will check it" in out
    async with desk_engine.sm() as s:
        [request] = await bindings.pending(s, lang="en")
    assert request["person"] == "Li Lei (Owner's family)"
