"""The order state table, checked against an expected edge list written independently from the order semantics."""

from __future__ import annotations

from collections import deque
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.trading.states import OPEN_STATES, TERMINAL_STATES, TRANSITIONS, OrderStatus, can_transition

S = OrderStatus

# Written from what each state means, not copied from the table:
#   INITIALIZED       journaled by the router, no broker has seen it
#   DENIED            refused locally, never sent            (final)
#   SUBMITTED         handed to the broker, no answer yet
#   ACCEPTED          working at the broker
#   REJECTED          refused by the broker                  (final)
#   PARTIALLY_FILLED  working, some quantity filled
#   FILLED            all filled                             (final)
#   PENDING_UPDATE    a modification sent, no answer yet
#   PENDING_CANCEL    a cancel sent, no answer yet
#   CANCELED          cancelled; only a fill that raced the cancel may still complete it
#   EXPIRED           time in force ran out                  (final)
EXPECTED: dict[OrderStatus, set[OrderStatus]] = {
    S.INITIALIZED: {
        S.DENIED,
        S.SUBMITTED,
        # reconciliation after a crash between journaling and recording the submission:
        # the broker already has the order, in whatever state it reached
        S.ACCEPTED, S.REJECTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED,
    },
    S.DENIED: set(),
    S.SUBMITTED: {
        S.ACCEPTED, S.REJECTED,
        S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED,  # IOC/FOK, brokers answering with the final state
        S.PENDING_CANCEL,  # cancel sent before the acknowledgement
    },
    S.ACCEPTED: {
        S.PARTIALLY_FILLED, S.FILLED, S.PENDING_UPDATE, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED,
        S.REJECTED,  # a stop-limit rejected when it triggers
    },
    S.PARTIALLY_FILLED: {S.PARTIALLY_FILLED, S.FILLED, S.PENDING_UPDATE, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED},
    S.PENDING_UPDATE: {
        S.ACCEPTED, S.PARTIALLY_FILLED,  # modification confirmed or refused: working again
        S.FILLED, S.CANCELED, S.EXPIRED, S.PENDING_CANCEL,  # overtaken
        S.REJECTED,  # brokers that modify by cancel-replace and reject the replacement
    },
    S.PENDING_CANCEL: {
        S.CANCELED, S.EXPIRED, S.FILLED,
        S.ACCEPTED, S.PARTIALLY_FILLED,  # the cancel failed / a fill arrived meanwhile
        S.REJECTED,  # SUBMITTED → PENDING_CANCEL, then the broker rejects the original submission
    },
    S.CANCELED: {S.FILLED},  # a fill racing the cancel
    S.REJECTED: set(),
    S.FILLED: set(),
    S.EXPIRED: set(),
}

ALL_PAIRS = list(product(OrderStatus, OrderStatus))

FINAL = {S.DENIED, S.REJECTED, S.FILLED, S.EXPIRED}


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)
    assert all(target in OrderStatus for targets in TRANSITIONS.values() for target in targets)


def test_all_121_pairs_are_enumerated() -> None:
    assert len(ALL_PAIRS) == 121 == len(OrderStatus) ** 2


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS)
def test_pair_matches_the_expected_edge_list(current: OrderStatus, new: OrderStatus) -> None:
    assert can_transition(current, new) is (new in EXPECTED[current])


def test_terminal_states_have_no_exits_but_a_late_fill() -> None:
    assert TERMINAL_STATES == FINAL | {S.CANCELED}
    for state in FINAL:
        assert TRANSITIONS[state] == frozenset(), state
    assert TRANSITIONS[S.CANCELED] == frozenset({S.FILLED})


def test_open_states_are_the_working_ones() -> None:
    assert OPEN_STATES == {S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_UPDATE, S.PENDING_CANCEL}
    assert not OPEN_STATES & TERMINAL_STATES
    assert S.INITIALIZED not in OPEN_STATES | TERMINAL_STATES


def test_nothing_returns_to_initialized_or_submitted_or_denied() -> None:
    for current, targets in TRANSITIONS.items():
        assert S.INITIALIZED not in targets
        assert S.DENIED not in targets or current is S.INITIALIZED
        assert S.SUBMITTED not in targets or current is S.INITIALIZED


def _reachable(start: OrderStatus) -> set[OrderStatus]:
    seen = {start}
    queue = deque([start])
    while queue:
        for target in TRANSITIONS[queue.popleft()]:
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def test_every_state_is_reachable_from_initialized() -> None:
    assert _reachable(S.INITIALIZED) == set(OrderStatus)


def test_every_state_can_still_end_in_a_terminal_state() -> None:
    for state in OrderStatus:
        assert _reachable(state) & TERMINAL_STATES, state


def test_open_states_can_always_reach_a_final_state() -> None:
    for state in OPEN_STATES:
        assert _reachable(state) & FINAL, state


@settings(max_examples=300)
@given(st.lists(st.integers(min_value=0, max_value=10**6), max_size=40), st.lists(st.sampled_from(OrderStatus), max_size=40))
def test_random_walks_of_expected_edges_are_legal(choices: list[int], probes: list[OrderStatus]) -> None:
    state = S.INITIALIZED
    path = [state]
    for index, choice in enumerate(choices):
        if index < len(probes):
            probe = probes[index]
            assert can_transition(state, probe) is (probe in EXPECTED[state])
        targets = sorted(EXPECTED[state])
        if not targets:
            assert state in FINAL
            break
        new = targets[choice % len(targets)]
        assert can_transition(state, new)
        state = new
        path.append(state)
    # once a walk leaves CANCELED it can only have gone to FILLED; final states are never left
    for before, after in zip(path, path[1:]):
        assert before not in FINAL
        if before is S.CANCELED:
            assert after is S.FILLED
