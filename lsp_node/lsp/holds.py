"""The hold state machine of SPEC.md §5.1 as one table: (state, event) -> next state, with guards.

Every change of `lsp_holds.state` goes through `next_state`, so an illegal transition is refused
here, in one place; the store then writes it conditionally on the state it was read in.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from lsp_node.errors import LspNodeError

# Hold states, as stored in lsp_holds.state.
ARMED: Final = "armed"
HELD: Final = "held"
RELEASED: Final = "released"
SETTLED: Final = "settled"
FAILED: Final = "failed"
EXPIRED: Final = "expired"
STATES: Final = (ARMED, HELD, RELEASED, SETTLED, FAILED, EXPIRED)
#: Holds that count against the client's caps and whose payment hashes are taken.
ACTIVE: Final = (ARMED, HELD, RELEASED)


class HoldEvent(str, Enum):
    """What can happen to a hold (the triggers of SPEC.md §5.1)."""

    HTLC_ACCEPTED = "htlc_accepted"  # the first matching HTLC was accepted on the hold's SCID
    UNBLOCK = "unblock"  # a valid PAYMENT_UNBLOCK (pid matches)
    SETTLE = "settle"  # PaymentForwarded matched the hold's last forwarded HTLC
    EXPIRE = "expire"  # block tick
    FAIL_BACK = "fail_back"  # block tick
    FORWARD_FAILED = "forward_failed"  # the release (or start-up) could hand none of its HTLCs to LDK
    RETRY_EXPIRED = "retry_expired"  # block tick: every HTLC failed and the payer did not retry in time
    OPERATOR_FAIL = "operator_fail"  # the operator fails the hold back by hand (admin API)


@dataclass(frozen=True)
class HoldFacts:
    """What the guards look at: the chain height, the hold's HTLCs by state and, for a released
    hold whose HTLCs failed, how long ago the last one did (the caller reads the clock)."""

    height: int
    expires_height: int
    failback_height: int | None
    htlcs: int = 0  # recorded HTLCs in any state
    held: int = 0  # HTLCs still waiting (`held`, or `forwarding`: not yet handed to LDK)
    forwarded: int = 0  # HTLCs `forwarded` and not yet settled
    settled: int = 0
    failed: int = 0
    failure_age: float | None = None  # seconds since the last HTLC failure, if any
    retry_grace_secs: float = 0.0  # the policy's wait for the payer's retry


Guard = Callable[[HoldFacts], bool]


def _always(f: HoldFacts) -> bool:
    return True


def _before_deadline(f: HoldFacts) -> bool:
    # With an HTLC the fail-back height is the deadline; before any HTLC, the hold's expiry.
    return f.height < (f.failback_height if f.failback_height is not None else f.expires_height)


def _unused_and_expired(f: HoldFacts) -> bool:
    return f.htlcs == 0 and f.height >= f.expires_height


def _failback_due(f: HoldFacts) -> bool:
    return f.failback_height is not None and f.height >= f.failback_height


def _stranded_failback_due(f: HoldFacts) -> bool:
    return f.held > 0 and _failback_due(f)


def _nothing_forwarded_left(f: HoldFacts) -> bool:
    return f.forwarded == 0


def _nothing_in_flight(f: HoldFacts) -> bool:
    # No HTLC waiting, none with LDK downstream, and none settled (that hold settles instead).
    return f.forwarded == 0 and f.held == 0 and f.settled == 0


def _retry_grace_over(f: HoldFacts) -> bool:
    # Every HTLC came back and the payer's router had its chance to retry over the hold's SCIDs.
    return _nothing_in_flight(f) and f.failed > 0 and f.failure_age is not None and f.failure_age >= f.retry_grace_secs


@dataclass(frozen=True)
class Transition:
    source: str
    event: HoldEvent
    target: str
    guard: Guard
    why: str


#: SPEC.md §5.1, row by row. Nothing else moves a hold.
TRANSITIONS: Final[tuple[Transition, ...]] = (
    Transition(ARMED, HoldEvent.HTLC_ACCEPTED, HELD, _always, "first HTLC accepted on the hold's SCID"),
    Transition(ARMED, HoldEvent.UNBLOCK, RELEASED, _before_deadline, "valid PAYMENT_UNBLOCK"),
    Transition(HELD, HoldEvent.UNBLOCK, RELEASED, _before_deadline, "valid PAYMENT_UNBLOCK"),
    Transition(RELEASED, HoldEvent.SETTLE, SETTLED, _nothing_forwarded_left, "last forwarded HTLC settled"),
    Transition(ARMED, HoldEvent.EXPIRE, EXPIRED, _unused_and_expired, "no HTLC arrived in time"),
    Transition(RELEASED, HoldEvent.EXPIRE, EXPIRED, _unused_and_expired, "released, but no HTLC arrived in time"),
    Transition(ARMED, HoldEvent.FAIL_BACK, FAILED, _failback_due, "fail-back height reached"),
    Transition(HELD, HoldEvent.FAIL_BACK, FAILED, _failback_due, "fail-back height reached"),
    Transition(RELEASED, HoldEvent.FAIL_BACK, FAILED, _stranded_failback_due, "released HTLC still waiting"),
    Transition(RELEASED, HoldEvent.FORWARD_FAILED, FAILED, _nothing_in_flight, "no HTLC could be forwarded"),
    Transition(RELEASED, HoldEvent.RETRY_EXPIRED, FAILED, _retry_grace_over, "every HTLC failed, no retry came"),
    # By hand, only before a release: a released hold's HTLCs are LDK's (or being handed to it).
    Transition(ARMED, HoldEvent.OPERATOR_FAIL, FAILED, _always, "failed back by the operator"),
    Transition(HELD, HoldEvent.OPERATOR_FAIL, FAILED, _always, "failed back by the operator"),
)
TABLE: Final[dict[tuple[str, HoldEvent], Transition]] = {(t.source, t.event): t for t in TRANSITIONS}


class IllegalTransition(LspNodeError):
    """A hold was asked to move along a transition the state machine does not have."""


def transition(state: str, event: HoldEvent) -> Transition | None:
    """The table's row for (state, event), or None if the event is illegal in that state."""
    return TABLE.get((state, event))


def allowed(state: str, event: HoldEvent, facts: HoldFacts) -> bool:
    """True if the event is legal in `state` and its guard holds."""
    row = TABLE.get((state, event))
    return row is not None and row.guard(facts)


def next_state(state: str, event: HoldEvent, facts: HoldFacts | None = None) -> str:
    """The state after `event`; raises IllegalTransition if the table has no such row or, when
    `facts` are given, its guard does not hold."""
    row = TABLE.get((state, event))
    if row is None:
        raise IllegalTransition(f"a hold in state {state!r} cannot take event {event.value!r}")
    if facts is not None and not row.guard(facts):
        raise IllegalTransition(f"hold {state!r} -> {row.target!r} on {event.value!r}: guard does not hold")
    return row.target
