"""Estates, buildings, units, people, household membership, staff and chat identities."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow


class Estate(Base):
    __tablename__ = "estates"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    buildings: Mapped[list["Building"]] = relationship(back_populates="estate")


class Building(Base):
    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("estate_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(ForeignKey("estates.id"), index=True)
    name: Mapped[str] = mapped_column(String(32))  # "3" for 3栋
    estate: Mapped[Estate] = relationship(back_populates="buildings")


class Unit(Base):
    """A home: 楼栋-单元-房号, e.g. 3-2-1502."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("building_id", "entrance", "room"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), index=True)
    entrance: Mapped[str] = mapped_column(String(16))  # 单元
    room: Mapped[str] = mapped_column(String(16))  # 房号
    area_m2: Mapped[float | None] = mapped_column(default=None)
    building: Mapped[Building] = relationship()

    @property
    def label(self) -> str:
        return self.make_label(self.building.name, self.entrance, self.room)

    @staticmethod
    def make_label(building: str, entrance: str, room: str) -> str:
        return f"{building}-{entrance}-{room}"


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    lang: Mapped[str | None] = mapped_column(String(8), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Residency(Base):
    """A person on the office's roster for a unit (owner, family or tenant)."""

    __tablename__ = "residencies"
    __table_args__ = (UniqueConstraint("unit_id", "person_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="owner")  # owner | family | tenant
    unit: Mapped[Unit] = relationship()
    person: Mapped[Person] = relationship()


class Binding(Base):
    """A chat user's claim to a unit: verified by the roster at once, or pending staff approval."""

    __tablename__ = "bindings"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # active | pending | refused
    phone: Mapped[str] = mapped_column(String(32), default="")
    # Who the person says they are, for staff deciding a request the roster does not vouch for.
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    relation: Mapped[str | None] = mapped_column(String(16), default=None)  # owner | family | tenant
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    unit: Mapped[Unit] = relationship()


class Identity(Base):
    """A chat account (channel + external user id) bound to a person."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    # Where to write to this person on this channel (a chat id; equals external_id for private chats).
    chat_id: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    person: Mapped[Person] = relationship()


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), unique=True)
    role: Mapped[str] = mapped_column(String(32), default="technician")  # technician | service | supervisor | manager
    trade: Mapped[str | None] = mapped_column(String(32), default=None)  # plumber, electrician ...
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    # A one-time code the staff member sends to the bot (/link CODE) to link a chat account.
    link_code: Mapped[str | None] = mapped_column(String(16), unique=True, default=None)
    link_code_expires_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    person: Mapped[Person] = relationship()


class StaffEstate(Base):
    __tablename__ = "staff_estates"
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    estate_id: Mapped[int] = mapped_column(ForeignKey("estates.id"), primary_key=True)
