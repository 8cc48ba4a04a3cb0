"""Bills per unit and the payments against them."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, DateTime, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.estate import Unit


class Bill(Base):
    __tablename__ = "bills"
    __table_args__ = (UniqueConstraint("unit_id", "period", "item"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    period: Mapped[str] = mapped_column(String(16))  # "2026-10" or "2026H2"
    item: Mapped[str] = mapped_column(String(32))  # 物业费 / 停车费 / 水费
    amount_due: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    amount_paid: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    due_date: Mapped[date] = mapped_column(Date)
    unit: Mapped[Unit] = relationship()

    @property
    def outstanding(self) -> Decimal:
        return self.amount_due - self.amount_paid


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    paid_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    method: Mapped[str] = mapped_column(String(32), default="")
    bill: Mapped[Bill] = relationship()


class FeeReminder(Base):
    """The per-unit log of fee reminders: one per bill, kind and round, so no owner is reminded twice."""

    __tablename__ = "fee_reminders"
    __table_args__ = (UniqueConstraint("bill_id", "kind", "round"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"))
    kind: Mapped[str] = mapped_column(String(16))  # due (before the due date) | arrears (催缴, monthly)
    round: Mapped[str] = mapped_column(String(16))  # "due", or the month of an arrears round: "2026-11"
    recipients: Mapped[int] = mapped_column(default=0)  # chat accounts it was queued to
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
