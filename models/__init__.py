"""SQLAlchemy models: estates and people, tickets, fees, conversations. No platform SDK here."""
from .base import Base, utcnow
from .channel_state import ApiToken, InboundReceipt, JobRun, ServiceWindow
from .conversation import Conversation, OutboxMessage
from .estate import Binding, Building, Estate, Identity, Person, Residency, Staff, StaffEstate, Unit
from .fee import Bill, FeeReminder, Payment
from .lifecycle import Action, Status, TransitionError, allowed_actions, next_status
from .ticket import Attachment, Ticket, TicketCard, TicketCounter, TicketEvent, TicketFollower

__all__ = [
    "Base", "utcnow", "Conversation", "OutboxMessage", "Binding", "Building", "Estate", "Identity",
    "Person", "Residency", "Staff", "StaffEstate", "Unit", "Bill", "Payment", "Action", "Status",
    "TransitionError", "allowed_actions", "next_status", "Attachment", "Ticket", "TicketCounter",
    "TicketEvent", "TicketCard", "ApiToken", "InboundReceipt", "ServiceWindow", "FeeReminder", "JobRun", "TicketFollower",
]
