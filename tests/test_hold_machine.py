"""The hold state machine (SPEC.md §5.1): every (state, event) pair, legal and illegal, and the guards."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from lsp_node.lsp.holds import (
    ARMED,
    EXPIRED,
    FAILED,
    HELD,
    RELEASED,
    SETTLED,
    STATES,
    TABLE,
    HoldEvent,
    HoldFacts,
    IllegalTransition,
    allowed,
    next_state,
)

# The table of SPEC.md §5.1, written out independently of the implementation.
LEGAL = {
    (ARMED, HoldEvent.HTLC_ACCEPTED): HELD,
    (ARMED, HoldEvent.UNBLOCK): RELEASED,
    (HELD, HoldEvent.UNBLOCK): RELEASED,
    (RELEASED, HoldEvent.SETTLE): SETTLED,
    (ARMED, HoldEvent.EXPIRE): EXPIRED,
    (RELEASED, HoldEvent.EXPIRE): EXPIRED,
    (ARMED, HoldEvent.FAIL_BACK): FAILED,
    (HELD, HoldEvent.FAIL_BACK): FAILED,
    (RELEASED, HoldEvent.FAIL_BACK): FAILED,
    (RELEASED, HoldEvent.FORWARD_FAILED): FAILED,
    (RELEASED, HoldEvent.RETRY_EXPIRED): FAILED,
    (ARMED, HoldEvent.OPERATOR_FAIL): FAILED,
    (HELD, HoldEvent.OPERATOR_FAIL): FAILED,
}


@pytest.mark.parametrize("state, event", list(itertools.product(STATES, HoldEvent)))
def test_every_pair(state: str, event: HoldEvent) -> None:
    if (state, event) in LEGAL:
        assert next_state(state, event) == LEGAL[(state, event)]
    else:
        with pytest.raises(IllegalTransition):
            next_state(state, event)
        assert not allowed(state, event, HoldFacts(height=10**6, expires_height=0, failback_height=0))


def test_table_is_the_spec_table() -> None:
    assert {k: t.target for k, t in TABLE.items()} == LEGAL


def test_final_states_have_no_way_out() -> None:
    for state in (SETTLED, FAILED, EXPIRED):
        assert not [e for e in HoldEvent if (state, e) in TABLE]


def f(height: int, failback: int | None = None, **counts: int) -> HoldFacts:
    return HoldFacts(height=height, expires_height=100, failback_height=failback, **counts)


def test_unblock_guard_is_the_deadline() -> None:
    assert allowed(ARMED, HoldEvent.UNBLOCK, f(99))
    assert not allowed(ARMED, HoldEvent.UNBLOCK, f(100))
    assert allowed(HELD, HoldEvent.UNBLOCK, f(100, failback=150, htlcs=1, held=1))
    assert not allowed(HELD, HoldEvent.UNBLOCK, f(150, failback=150, htlcs=1, held=1))
    with pytest.raises(IllegalTransition, match="guard"):
        next_state(ARMED, HoldEvent.UNBLOCK, f(100))


def test_expire_guard_needs_no_htlc_and_the_expiry_height() -> None:
    assert not allowed(ARMED, HoldEvent.EXPIRE, f(99))
    assert allowed(ARMED, HoldEvent.EXPIRE, f(100))
    assert allowed(RELEASED, HoldEvent.EXPIRE, f(100))
    assert not allowed(RELEASED, HoldEvent.EXPIRE, f(100, htlcs=1, forwarded=1))


def test_failback_guards() -> None:
    assert not allowed(HELD, HoldEvent.FAIL_BACK, f(10**6))  # no fail-back height yet
    assert not allowed(HELD, HoldEvent.FAIL_BACK, f(149, failback=150, htlcs=1, held=1))
    assert allowed(HELD, HoldEvent.FAIL_BACK, f(150, failback=150, htlcs=1, held=1))
    # A released hold fails only while an HTLC of it is still held.
    assert not allowed(RELEASED, HoldEvent.FAIL_BACK, f(150, failback=150, htlcs=1, forwarded=1))
    assert allowed(RELEASED, HoldEvent.FAIL_BACK, f(150, failback=150, htlcs=2, held=1, forwarded=1))


def test_settle_guard_waits_for_the_last_forwarded_htlc() -> None:
    assert not allowed(RELEASED, HoldEvent.SETTLE, f(0, htlcs=2, forwarded=1))
    assert allowed(RELEASED, HoldEvent.SETTLE, f(0, htlcs=2))


def test_forward_failed_guard_needs_nothing_in_flight() -> None:
    f = HoldFacts(height=0, expires_height=0, failback_height=None, htlcs=2, failed=2)
    assert allowed(RELEASED, HoldEvent.FORWARD_FAILED, f)
    assert not allowed(RELEASED, HoldEvent.FORWARD_FAILED, dataclasses.replace(f, forwarded=1))
    assert not allowed(RELEASED, HoldEvent.FORWARD_FAILED, dataclasses.replace(f, held=1))
    assert not allowed(RELEASED, HoldEvent.FORWARD_FAILED, dataclasses.replace(f, settled=1))


def test_retry_expired_guard_waits_for_every_htlc_and_the_grace() -> None:
    f = HoldFacts(
        height=0, expires_height=0, failback_height=None, htlcs=1, failed=1, failure_age=60.0, retry_grace_secs=60.0
    )
    assert allowed(RELEASED, HoldEvent.RETRY_EXPIRED, f)
    assert not allowed(RELEASED, HoldEvent.RETRY_EXPIRED, dataclasses.replace(f, failure_age=59.9))
    assert not allowed(RELEASED, HoldEvent.RETRY_EXPIRED, dataclasses.replace(f, failure_age=None))
    assert not allowed(RELEASED, HoldEvent.RETRY_EXPIRED, dataclasses.replace(f, failed=0, htlcs=0))
    assert not allowed(RELEASED, HoldEvent.RETRY_EXPIRED, dataclasses.replace(f, forwarded=1, htlcs=2))
    assert not allowed(RELEASED, HoldEvent.RETRY_EXPIRED, dataclasses.replace(f, held=1, htlcs=2))
    assert not allowed(RELEASED, HoldEvent.RETRY_EXPIRED, dataclasses.replace(f, settled=1, htlcs=2))
