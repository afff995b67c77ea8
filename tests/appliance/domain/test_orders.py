import pytest

from appliance.domain.errors import DomainError
from appliance.domain.orders import (
    FORWARD,
    Actor,
    LineStatus,
    advance,
    session_transition,
    transition,
    void_line,
)
from appliance.domain.orders import (
    OrderStatus as S,
)
from appliance.domain.orders import (
    SessionStatus as SS,
)


def test_the_kitchen_path_in_order():
    status = S.SUBMITTED
    seen = [status]
    while status in FORWARD:
        status = advance(status).target
        seen.append(status)
    assert seen == [S.SUBMITTED, S.ACCEPTED, S.PREPARING, S.READY, S.SERVED]


@pytest.mark.parametrize(
    "current,target",
    [
        (S.SUBMITTED, S.PREPARING),
        (S.SUBMITTED, S.SERVED),
        (S.ACCEPTED, S.SUBMITTED),
        (S.READY, S.ACCEPTED),
        (S.SERVED, S.CANCELLED),
        (S.CANCELLED, S.ACCEPTED),
        (S.SERVED, S.READY),
    ],
)
def test_illegal_moves_are_refused_with_a_clear_error(current, target):
    with pytest.raises(DomainError) as err:
        transition(current, target, Actor.STAFF, "reason")
    assert err.value.code == "illegal_transition"
    assert current.value in err.value.message and target.value in err.value.message


def test_a_diner_may_cancel_only_before_the_kitchen_accepts():
    assert transition(S.SUBMITTED, S.CANCELLED, Actor.DINER).target == S.CANCELLED
    with pytest.raises(DomainError) as err:
        transition(S.ACCEPTED, S.CANCELLED, Actor.DINER)
    assert err.value.code == "not_allowed"


def test_a_diner_never_moves_an_order_forward():
    with pytest.raises(DomainError) as err:
        transition(S.SUBMITTED, S.ACCEPTED, Actor.DINER)
    assert err.value.code == "not_allowed"


def test_staff_cancel_after_accept_needs_a_reason():
    with pytest.raises(DomainError) as err:
        transition(S.PREPARING, S.CANCELLED, Actor.STAFF, "  ")
    assert err.value.code == "reason_required"
    move = transition(S.PREPARING, S.CANCELLED, Actor.STAFF, " out of fish ")
    assert (move.source, move.target, move.reason) == (S.PREPARING, S.CANCELLED, "out of fish")
    assert transition(S.SUBMITTED, S.CANCELLED, Actor.STAFF).reason is None


def test_void_line_rules():
    assert void_line(LineStatus.ACTIVE, S.ACCEPTED, " wrong dish ") == "wrong dish"
    for args, code in [
        ((LineStatus.VOIDED, S.ACCEPTED, "x"), "already_voided"),
        ((LineStatus.ACTIVE, S.SERVED, "x"), "illegal_transition"),
        ((LineStatus.ACTIVE, S.ACCEPTED, ""), "reason_required"),
    ]:
        with pytest.raises(DomainError) as err:
            void_line(*args)
        assert err.value.code == code


def test_session_cannot_close_with_money_owed_unless_confirmed():
    with pytest.raises(DomainError) as err:
        session_transition(SS.OPEN, SS.CLOSED, unpaid_minor=3800)
    assert err.value.code == "unpaid_session"
    assert err.value.details["unpaid_minor"] == 3800
    assert session_transition(SS.OPEN, SS.CLOSED, unpaid_minor=3800, confirm_unpaid=True) == SS.CLOSED
    assert session_transition(SS.PAID, SS.CLOSED) == SS.CLOSED
    with pytest.raises(DomainError):
        session_transition(SS.CLOSED, SS.OPEN)
