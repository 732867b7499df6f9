"""Per-connection budgets and fair queues (pure): buckets, the suppressed-refusal tally, round-robin serving."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.config import parse_config
from host.errors import ConfigError
from host.router.admission import ADMIN_UNAUTHENTICATED, OPERATOR, UNAUTHENTICATED, Buckets, FairQueues, Tally, strategy_key, strategy_of


# -- buckets --------------------------------------------------------------------------------------------


class _Clock:
    """Time that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = _Clock()
    buckets = Buckets(rate=10, burst=3, clock=clock)
    assert [buckets.delay(b"p") for _ in range(3)] == [0, 0, 0]
    assert buckets.delay(b"p") == pytest.approx(0.1)
    clock.now = 0.05
    assert buckets.delay(b"p") == pytest.approx(0.05)  # half a token came back; nothing taken
    clock.now = 0.1
    assert buckets.delay(b"p") == 0
    assert buckets.delay(b"p") > 0


def test_each_connection_has_its_own_bucket() -> None:
    buckets = Buckets(rate=1, burst=1, clock=_Clock())
    assert buckets.delay(b"a") == 0
    assert buckets.delay(b"a") > 0
    assert buckets.delay(b"b") == 0


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    clock = _Clock()
    buckets = Buckets(rate=100, burst=2, clock=clock)
    assert buckets.delay(b"p") == 0
    clock.now = 3600.0
    assert [buckets.delay(b"p") == 0 for _ in range(3)] == [True, True, False]


def test_idle_buckets_are_forgotten_and_busy_ones_kept() -> None:
    clock = _Clock()
    buckets = Buckets(rate=10, burst=5, clock=clock)
    buckets.delay(b"idle")
    clock.now = 1.0
    for _ in range(5):
        buckets.delay(b"busy")
    assert buckets.forget_idle() == 1
    assert len(buckets) == 1
    assert buckets.delay(b"busy") > 0  # still empty: forgetting it would have handed it a new burst


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (5, 0.5)])
def test_a_bucket_needs_a_positive_rate_and_a_burst_of_one(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="positive rate"):
        Buckets(rate, burst)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=200), st.floats(1, 50), st.integers(1, 20))
def test_a_bucket_never_lets_through_more_than_burst_plus_rate_times_time(gaps: list[float], rate: float, burst: int) -> None:
    clock = _Clock()
    buckets = Buckets(rate, burst, clock=clock)
    passed = 0
    for gap in gaps:
        clock.now += gap
        passed += buckets.delay(b"p") == 0
    assert passed <= burst + rate * clock.now + 1e-6


# -- the tally of suppressed refusals ----------------------------------------------------------------


def test_suppressed_refusals_are_counted_per_sender_and_summarised_once_their_second_is_over() -> None:
    tally = Tally(every=1.0)
    sma = strategy_key("sma")
    tally.add(sma, "INVALID_REQUEST", 10.0, 1000.0, request_id="a")
    tally.add(sma, "RATE_LIMITED", 10.2, 1000.2)
    tally.add(sma, "INVALID_REQUEST", 10.4, 1000.4, request_id="c")
    tally.add(UNAUTHENTICATED, "UNAUTHORIZED", 10.5, 1000.5)
    assert tally.due(10.9) == []
    (key, counts), = tally.due(11.0)
    assert (key, counts.count, strategy_of(key)) == (sma, 3, "sma")
    assert counts.detail(key) == {
        "source": "strategy sma", "count": 3, "codes": {"INVALID_REQUEST": 2, "RATE_LIMITED": 1},
        "first_request_id": "a", "last_request_id": "c", "from": 1000.0, "to": 1000.4,
    }
    assert tally
    (key, counts), = tally.due(10.6, everything=True)
    assert (key, counts.count, strategy_of(key)) == (UNAUTHENTICATED, 1, None)
    assert not tally


def test_a_summary_is_due_by_the_monotonic_clock_whatever_the_wall_clock_does() -> None:
    tally = Tally(every=1.0)
    tally.add(UNAUTHENTICATED, "INVALID_REQUEST", 5.0, 2000.0)
    tally.add(UNAUTHENTICATED, "INVALID_REQUEST", 5.5, 1000.0)  # the wall clock stepped back an hour... ish
    (_, counts), = tally.due(6.0)
    assert counts.count == 2 and (counts.first_at, counts.last_at) == (2000.0, 1000.0)


def test_strategy_keys_round_trip_and_shared_classes_name_no_strategy() -> None:
    assert strategy_of(strategy_key("mean revert")) == "mean revert"
    assert strategy_of(UNAUTHENTICATED) is None and strategy_of(OPERATOR) is None and strategy_of(ADMIN_UNAUTHENTICATED) is None


# -- fair queues ------------------------------------------------------------------------------------------


def _serve(queues: FairQueues[tuple[bytes, int]], clock: _Clock, cost: float, limit: int = 10_000) -> list[tuple[bytes, int]]:
    handled: list[tuple[bytes, int]] = []

    def handle(item: tuple[bytes, int]) -> None:
        handled.append(item)
        clock.now += cost

    queues.serve(handle, limit)
    return handled


def test_a_connection_that_arrives_behind_a_burst_is_served_in_the_first_round() -> None:
    clock = _Clock()
    queues: FairQueues[tuple[bytes, int]] = FairQueues(quantum=0.002, budget=0.002, lone_budget=0.01, clock=clock)
    for n in range(1000):
        queues.put(b"flood", (b"flood", n), 10)
    queues.put(b"victim", (b"victim", 0), 10)
    handled = _serve(queues, clock, cost=0.0001)
    assert handled.index((b"victim", 0)) <= 20  # one quantum of the flood at most, then the victim
    assert len(handled) < 100  # the turn ended after a round: the victim's answer is not held for the whole flood
    assert len(queues) == 1001 - len(handled)


def test_a_lone_connection_keeps_the_turn_for_the_longer_budget() -> None:
    clock = _Clock()
    tick = 1 / 1024  # exact in binary, so the slices end where the arithmetic says
    queues: FairQueues[tuple[bytes, int]] = FairQueues(quantum=4 * tick, budget=4 * tick, lone_budget=16 * tick, clock=clock)
    for n in range(1000):
        queues.put(b"only", (b"only", n), 10)
    assert len(_serve(queues, clock, cost=tick)) == 16
    assert len(_serve(queues, clock, cost=tick, limit=7)) == 7


def test_a_full_queue_refuses_more_but_takes_a_first_request() -> None:
    o = FairQueues.OVERHEAD  # what each item is counted beyond its size
    queues: FairQueues[int] = FairQueues(max_bytes=2 * o + 100)
    assert queues.put(b"p", 1, 5000)  # larger than the cap, but nothing of this sender is waiting
    assert not queues.put(b"p", 2, 1)
    assert queues.put(b"q", 3, 60) and queues.put(b"q", 4, 40) and not queues.put(b"q", 5, 1)
    handled: list[int] = []
    queues.serve(handled.append, 100)
    assert sorted(handled) == [1, 3, 4] and not queues
    assert queues.put(b"p", 6, 100)  # emptied: room again


def test_all_queues_together_are_capped_so_many_connections_buy_no_unbounded_memory() -> None:
    item = FairQueues.OVERHEAD + 50
    queues: FairQueues[int] = FairQueues(max_bytes=2 * item, max_total=5 * item)
    assert all(queues.put(bytes([n]), n, 50) for n in range(5))  # at the cap
    assert not queues.put(b"\x00", 99, 50)  # something of its own waiting: refused over the total
    assert all(queues.put(bytes([n]), n, 50) for n in range(5, 10))  # a first request still gets in ...
    assert not queues.put(b"\xff", 99, 50)  # ... until twice the cap
    assert queues.total == 10 * item
    queues.serve(lambda item: None, 1000)
    assert queues.total == 0 and queues.put(b"\x00", 1, 100)


def test_a_resent_request_still_waiting_is_dropped_and_the_first_answered() -> None:
    queues: FairQueues[str] = FairQueues()
    assert queues.put(b"sma", "first", 10, dedupe=(b"peer", b"message"))
    assert queues.put(b"sma", "re-send", 10, dedupe=(b"peer", b"message"))  # taken, and dropped
    assert queues.put(b"sma", "other peer", 10, dedupe=(b"peer2", b"message"))
    assert queues.put(b"sma", "no id", 10) and queues.put(b"sma", "no id again", 10)
    handled: list[str] = []
    queues.serve(handled.append, 100)
    assert handled == ["first", "other peer", "no id", "no id again"]
    assert queues.put(b"sma", "after", 10, dedupe=(b"peer", b"message"))  # answered by now: a new copy is queued
    assert queues.drain() == ["after"] and not queues and queues.total == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c", b"d"]), st.integers(0, 3)), max_size=300), st.integers(1, 50))
def test_every_request_is_served_once_and_each_connection_in_its_order(arrivals: list[tuple[bytes, int]], limit: int) -> None:
    clock = _Clock()
    queues: FairQueues[tuple[bytes, int]] = FairQueues(quantum=0.002, budget=0.002, lone_budget=0.01, clock=clock)
    sent: dict[bytes, list[tuple[bytes, int]]] = defaultdict(list)
    for n, (key, _) in enumerate(arrivals):
        assert queues.put(key, (key, n), 1)
        sent[key].append((key, n))
    served: list[tuple[bytes, int]] = []
    costs = iter([0.0001 * (c + 1) for _, c in arrivals])
    while queues:
        before = len(served)

        def handle(item: tuple[bytes, int]) -> None:
            served.append(item)
            clock.now += next(costs)

        assert queues.serve(handle, limit) == len(served) - before > 0
    assert sorted(served, key=lambda i: i[1]) == sorted(sum(sent.values(), []), key=lambda i: i[1])
    for key, items in sent.items():
        assert [i for i in served if i[0] == key] == items


# -- configuration -----------------------------------------------------------------------------------------


def test_the_budgets_are_router_keys_with_sane_defaults(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.toml"
    router = parse_config("", path).router
    assert router.request_bucket == (5000.0, 10000.0)
    assert router.refusal_bucket == (20.0, 100.0)
    router = parse_config("[router]\nmax_requests_per_second = 100\nrequest_burst = 150\naudited_refusals_per_second = 0.1\n", path).router
    assert router.request_bucket == (100.0, 150.0)
    assert router.refusal_bucket == (0.1, 1.0)
    router = parse_config("[router]\nmax_requests_per_second = 0.25\n", path).router
    assert router.request_bucket == (0.25, 1.0)  # a burst below one request would refuse everything
    Buckets(*router.request_bucket)
    for bad in ("max_requests_per_second = 0", "request_burst = 0", "audited_refusals_per_second = -1", "max_requests_per_second = 'fast'"):
        with pytest.raises(ConfigError, match=bad.split(" ")[0]):
            parse_config(f"[router]\n{bad}\n", path)
