"""The ticket lifecycle: every allowed status change, in one table."""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    REOPENED = "reopened"


class Action(StrEnum):
    CLAIM = "claim"  # 接单 / dispatch to a person
    START = "start"  # 到场 on site, work begins
    HOLD = "hold"  # 挂起 waiting for parts or the owner
    RESUME = "resume"
    RESOLVE = "resolve"  # 完成
    CLOSE = "close"  # owner confirmed or the return-visit window ran out
    REOPEN = "reopen"  # not fixed / bad rating
    CANCEL = "cancel"  # by the owner before resolution
    REJECT = "reject"  # 退单, with a reason; back into dispatch
    REASSIGN = "reassign"  # 转派 to another person
    MERGE = "merge"  # 合并: the same problem as another open ticket, which carries on for both owners


S = Status
OPEN_STATUSES = frozenset({S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.ON_HOLD, S.REJECTED, S.REOPENED})
FINAL_STATUSES = frozenset({S.CLOSED, S.CANCELLED})

# (action) -> {from status: to status}
TRANSITIONS: dict[Action, dict[Status, Status]] = {
    Action.CLAIM: {S.NEW: S.ASSIGNED, S.REJECTED: S.ASSIGNED, S.REOPENED: S.ASSIGNED},
    Action.START: {S.ASSIGNED: S.IN_PROGRESS},
    Action.HOLD: {S.ASSIGNED: S.ON_HOLD, S.IN_PROGRESS: S.ON_HOLD},
    Action.RESUME: {S.ON_HOLD: S.IN_PROGRESS},
    Action.RESOLVE: {S.ASSIGNED: S.RESOLVED, S.IN_PROGRESS: S.RESOLVED},
    Action.CLOSE: {S.RESOLVED: S.CLOSED},
    Action.REOPEN: {S.RESOLVED: S.REOPENED, S.CLOSED: S.REOPENED},
    Action.CANCEL: {s: S.CANCELLED for s in OPEN_STATUSES},
    Action.REJECT: {S.NEW: S.REJECTED, S.ASSIGNED: S.REJECTED, S.IN_PROGRESS: S.REJECTED,
                    S.ON_HOLD: S.REJECTED, S.REOPENED: S.REJECTED},
    Action.REASSIGN: {S.ASSIGNED: S.ASSIGNED, S.IN_PROGRESS: S.ASSIGNED, S.ON_HOLD: S.ASSIGNED},
    Action.MERGE: {s: S.CLOSED for s in OPEN_STATUSES},
}

# Actions that must carry a note explaining why.
NEEDS_REASON = frozenset({Action.REJECT, Action.REOPEN})


class TransitionError(ValueError):
    def __init__(self, status: Status | str, action: Action | str):
        super().__init__(f"cannot {action} a ticket that is {status}")
        self.status, self.action = status, action


def next_status(status: Status | str, action: Action | str) -> Status:
    """The status after `action`, or TransitionError when the table does not allow it."""
    try:
        return TRANSITIONS[Action(action)][Status(status)]
    except (KeyError, ValueError):
        raise TransitionError(status, action) from None


def allowed_actions(status: Status | str) -> list[Action]:
    return [a for a, table in TRANSITIONS.items() if Status(status) in table]
