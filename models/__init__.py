"""SQLAlchemy models: estates and people, tickets, fees, conversations. No platform SDK here."""
from models.base import Base, utcnow
from models.channel_state import ApiToken, InboundReceipt, JobRun, ServiceWindow
from models.console import ClassifierCorrection, LoginThrottle, StaffSession, TicketNote
from models.conversation import Conversation, OutboxMessage
from models.estate import Binding, Building, Estate, Identity, Person, Residency, Staff, StaffEstate, Unit
from models.fee import Bill, FeeReminder, Payment
from models.lifecycle import Action, Status, TransitionError, allowed_actions, next_status
from models.ticket import Attachment, Ticket, PostedCard, TicketCounter, TicketEvent, TicketFollower

__all__ = [
    "Base", "utcnow", "Conversation", "OutboxMessage", "Binding", "Building", "Estate", "Identity",
    "Person", "Residency", "Staff", "StaffEstate", "Unit", "Bill", "Payment", "Action", "Status",
    "TransitionError", "allowed_actions", "next_status", "Attachment", "Ticket", "TicketCounter",
    "TicketEvent", "PostedCard", "ApiToken", "InboundReceipt", "ServiceWindow", "FeeReminder", "JobRun",
    "TicketFollower", "ClassifierCorrection", "LoginThrottle", "StaffSession", "TicketNote",
]
