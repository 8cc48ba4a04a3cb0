"""The transition table, checked exhaustively."""
from __future__ import annotations

import pytest

from models.lifecycle import (FINAL_STATUSES, TRANSITIONS, Action, Status, TransitionError, allowed_actions,
                              next_status)

S = Status
HAPPY_PATH = [(Action.CLAIM, S.ASSIGNED), (Action.START, S.IN_PROGRESS), (Action.RESOLVE, S.RESOLVED),
              (Action.CLOSE, S.CLOSED)]


def test_happy_path():
    status = S.NEW
    for action, expected in HAPPY_PATH:
        status = next_status(status, action)
        assert status == expected


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
def test_every_pair_is_either_in_the_table_or_refused(status, action):
    if status in TRANSITIONS[action]:
        assert next_status(status, action) == TRANSITIONS[action][status]
    else:
        with pytest.raises(TransitionError):
            next_status(status, action)


def test_final_states_only_reopen_from_closed():
    assert allowed_actions(S.CANCELLED) == []
    assert allowed_actions(S.CLOSED) == [Action.REOPEN]
    assert S.CLOSED in FINAL_STATUSES


def test_hold_resume_reject_reopen_cancel():
    assert next_status(S.IN_PROGRESS, Action.HOLD) == S.ON_HOLD
    assert next_status(S.ON_HOLD, Action.RESUME) == S.IN_PROGRESS
    assert next_status(S.ASSIGNED, Action.REJECT) == S.REJECTED
    assert next_status(S.REJECTED, Action.CLAIM) == S.ASSIGNED  # back into dispatch
    assert next_status(S.RESOLVED, Action.REOPEN) == S.REOPENED
    assert next_status(S.REOPENED, Action.CLAIM) == S.ASSIGNED
    with pytest.raises(TransitionError):
        next_status(S.RESOLVED, Action.CANCEL)  # owners cancel only before resolution
    with pytest.raises(TransitionError):
        next_status("nonsense", Action.CLAIM)
