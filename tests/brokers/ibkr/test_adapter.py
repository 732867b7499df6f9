"""The adapter against the loopback TWS: answers to orders, pushed changes, lookups and reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from brokers.base import OutcomeUnknown
from brokers.ibkr.adapter import IbkrBroker
from brokers.ibkr.errors import ERRORS, IbOutcomeUnknown
from host.trading.errors import (
    ConnectionFailed,
    InsufficientFunds,
    InvalidInstrument,
    InvalidPrice,
    InvalidQuantity,
    InvalidRequest,
    OrderNotFound,
)
from host.trading.model import Order, OrderChanges, OrderType, Side
from host.trading.states import OrderStatus

from .conftest import UNCLASSIFIED, BrokerFactory, Harness, make_order, unclassified_error
from .fake_tws import FakeOrder, FakeTws

pytestmark = pytest.mark.anyio
S = OrderStatus


def fill_at_once(fake: FakeTws, price: str = "1.08519") -> None:
    def on_place(order: FakeOrder) -> None:
        fake.accept(order)
        fake.fill(order, order.quantity, price)

    fake.on_place = on_place


async def test_a_market_order_filled_at_once_is_answered_filled_with_its_fill_and_commission(ib: Harness) -> None:
    fill_at_once(ib.fake)
    report = await ib.broker.submit(make_order())
    assert report.status is S.FILLED
    assert report.raw_status == "Filled"
    assert report.broker_order_id == str(ib.fake.order_by_ref("sma-20261122-000001").order_id)
    (fill,) = report.fills
    assert (fill.quantity, fill.price, fill.commission) == (Decimal("20000"), Decimal("1.08519"), Decimal("1.25"))
    assert fill.trade_id == ib.fake.executions[0].exec_id
    offset = fill.at.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    assert report.raw is not None and report.raw["perm_id"] == ib.fake.order_by_ref("sma-20261122-000001").perm_id


async def test_a_resting_limit_order_is_accepted_and_its_later_fills_are_emitted(ib: Harness) -> None:
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), quantity=Decimal("30000"))
    report = await ib.broker.submit(order)
    assert (report.status, report.limit_price, report.quantity) == (S.ACCEPTED, Decimal("1.08"), Decimal("30000"))
    fake_order = ib.fake.order_by_ref(order.client_order_id)
    ib.fake.fill(fake_order, "10000", "1.08")
    partial = await ib.report(order.client_order_id, S.PARTIALLY_FILLED)
    assert [f.quantity for f in partial.fills] == [Decimal("10000")]
    ib.fake.fill(fake_order, "20000", "1.07995")
    done = await ib.report(order.client_order_id, S.FILLED)
    assert sum(f.quantity for f in done.fills) == Decimal("30000")
    assert len({f.trade_id for f in done.fills}) == 2


async def test_a_partial_fill_in_the_answer(ib: Harness) -> None:
    def on_place(order: FakeOrder) -> None:
        ib.fake.accept(order)
        ib.fake.fill(order, "5000", "1.0851")

    ib.fake.on_place = on_place
    report = await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.0851")))
    assert report.status is S.PARTIALLY_FILLED
    assert [f.quantity for f in report.fills] == [Decimal("5000")]


async def test_an_ioc_order_cancelled_at_once_is_canceled_not_rejected(ib: Harness) -> None:
    def cancel_at_once(order: FakeOrder) -> None:
        ib.fake.accept(order)
        ib.fake.cancel(order, "IOC order not filled")

    ib.fake.on_place = cancel_at_once
    report = await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.0"), time_in_force="IOC"))
    assert report.status is S.CANCELED
    assert report.error is None
    assert ib.fake.order_by_ref("sma-20261122-000001").fields["tif"] == "IOC"


async def test_a_201_reject_is_rejected_by_its_code_although_ib_async_says_cancelled(ib: Harness) -> None:
    margin = "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY WITH LOAN VALUE MUST EXCEED THE INITIAL MARGIN"
    ib.fake.on_place = lambda order: ib.fake.reject(order, 201, margin)
    with pytest.raises(InsufficientFunds) as caught:
        await ib.broker.submit(make_order())
    assert caught.value.broker_code == "201"
    assert caught.value.broker_message == margin
    report = await ib.broker.lookup("sma-20261122-000001")
    assert report is not None and report.status is S.REJECTED
    assert report.error is not None and report.error.code == "INSUFFICIENT_FUNDS" and report.error.broker_code == "201"


async def test_a_reject_without_a_known_reason_is_an_invalid_request(ib: Harness) -> None:
    ib.fake.on_place = lambda order: ib.fake.reject(order, 201, "Order rejected - reason:Something unusual")
    with pytest.raises(InvalidRequest) as caught:
        await ib.broker.submit(make_order())
    assert caught.value.broker_code == "201"


async def test_the_informational_10349_on_a_new_order_is_no_reject(ib: Harness) -> None:
    # TWS applied the order presets; the order works on (ib_async marks it Cancelled all the same).
    def preset_then_accept(order: FakeOrder) -> None:
        ib.fake.send_error(order, 10349, "Order TIF was set to DAY based on order preset.")
        ib.fake.accept(order)

    ib.fake.on_place = preset_then_accept
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"))
    report = await ib.broker.submit(order)
    assert (report.status, report.error) == (S.ACCEPTED, None)
    ib.fake.fill(ib.fake.order_by_ref(order.client_order_id), "20000", "1.08")
    filled = await ib.report(order.client_order_id, S.FILLED)
    assert [f.quantity for f in filled.fills] == [Decimal("20000")]


async def test_a_price_off_the_tick_is_refused_as_invalid_price(ib: Harness) -> None:
    ib.fake.on_place = lambda order: ib.fake.send_error(order, 110, "The price does not conform to the minimum price variation for this contract.")
    with pytest.raises(InvalidPrice) as caught:
        await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.08513")))
    assert caught.value.broker_code == "110"


async def test_an_unknown_contract_is_refused_as_invalid_instrument(ib: Harness) -> None:
    ib.fake.contracts = [c for c in ib.fake.contracts if c.symbol != "AAPL"]
    with pytest.raises(InvalidInstrument) as caught:
        await ib.broker.submit(make_order(instrument="AAPL", quantity=Decimal("10")))
    assert caught.value.broker_code == "200"


async def test_an_instrument_not_configured_is_refused_before_anything_is_sent(ib: Harness) -> None:
    with pytest.raises(InvalidInstrument):
        await ib.broker.submit(make_order(instrument="GBP_USD"))
    assert ib.fake.messages(3) == []


async def test_a_bracket_answers_for_the_entry_and_reports_its_children_afterwards(ib: Harness) -> None:
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), stop_loss=Decimal("1.075"), take_profit=Decimal("1.09"), tag="b")
    report = await ib.broker.submit(order)
    assert report.status is S.ACCEPTED and report.parent_client_order_id is None
    assert ib.reports == []  # the children come after the answer
    tp = await ib.report(order.client_order_id + "-TP")
    sl = await ib.report(order.client_order_id + "-SL")
    for child, kind in ((tp, OrderType.LIMIT), (sl, OrderType.STOP)):
        assert child.parent_client_order_id == order.client_order_id
        assert child.status is S.ACCEPTED and child.raw_status == "PreSubmitted"
        assert child.terms is not None and (child.terms.type, child.terms.side, child.terms.quantity) == (kind, Side.SELL, Decimal("20000"))
        assert child.terms.tag == "b"
    assert tp.limit_price == Decimal("1.09") and sl.stop_price == Decimal("1.075")

    entry = ib.fake.order_by_ref(order.client_order_id)
    ib.fake.fill(entry, "20000", "1.08")
    await ib.report(order.client_order_id, S.FILLED)
    ib.fake.fill(ib.fake.order_by_ref(order.client_order_id + "-TP"), "20000", "1.09")
    assert (await ib.report(order.client_order_id + "-TP", S.FILLED)).fills[0].price == Decimal("1.09")
    cancelled = await ib.report(order.client_order_id + "-SL", S.CANCELED)
    assert cancelled.parent_client_order_id == order.client_order_id


async def test_a_trailing_stop_is_reported_under_its_parent_and_its_fill_as_a_fill_of_the_tsl_child(ib: Harness) -> None:
    assert ib.broker.capabilities.trailing_stops and ib.broker.capabilities.to_dict()["trailing_stops"] is True
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), take_profit=Decimal("1.09"), trailing_stop=Decimal("0.0025"), tag="tr")
    report = await ib.broker.submit(order)
    assert report.status is S.ACCEPTED and report.parent_client_order_id is None
    cid = order.client_order_id + "-TSL"
    waiting = await ib.report(cid)
    assert (waiting.parent_client_order_id, waiting.status, waiting.raw_status) == (order.client_order_id, S.ACCEPTED, "PreSubmitted")
    assert (waiting.quantity, waiting.stop_price, waiting.limit_price, waiting.terms) == (Decimal("20000"), None, None, None)  # no trigger yet

    entry, trail = ib.fake.order_by_ref(order.client_order_id), ib.fake.order_by_ref(cid)
    assert trail.oca_group == ib.fake.order_by_ref(order.client_order_id + "-TP").oca_group == order.client_order_id + "-OCA"
    ib.fake.fill(entry, "20000", "1.08")
    await ib.report(order.client_order_id, S.FILLED)
    ib.fake.trail(trail, "1.0776")  # TWS sets the trigger once the trail works, and moves it with the market
    await ib.fake.wait_for(lambda: any(r.stop_price == Decimal("1.0776") for r in ib.of(cid)))
    working = ib.of(cid)[-1]
    assert (working.parent_client_order_id, working.status, working.stop_price) == (order.client_order_id, S.ACCEPTED, Decimal("1.0776"))
    assert working.terms is not None
    assert (working.terms.type, working.terms.side, working.terms.quantity, working.terms.stop_price, working.terms.tag) == (
        OrderType.STOP, Side.SELL, Decimal("20000"), Decimal("1.0776"), "tr",
    )  # fmt: skip
    ib.fake.trail(trail, "1.0791")
    await ib.fake.wait_for(lambda: ib.of(cid)[-1].stop_price == Decimal("1.0791"))

    ib.fake.fill(trail, "20000", "1.0790")
    stopped = await ib.report(cid, S.FILLED)
    assert stopped.client_order_id == cid and stopped.parent_client_order_id == order.client_order_id
    assert [(f.quantity, f.price) for f in stopped.fills] == [(Decimal("20000"), Decimal("1.079"))]
    assert stopped.broker_order_id == str(trail.order_id)
    assert (await ib.report(order.client_order_id + "-TP", S.CANCELED)).parent_client_order_id == order.client_order_id
    found = await ib.broker.lookup(cid)
    assert found is not None and found.status is S.FILLED and found.terms is not None and found.terms.stop_price == Decimal("1.0791")


async def test_a_rejected_bracket_raises_and_reports_its_children_cancelled(ib: Harness) -> None:
    ib.fake.on_place = lambda order: ib.fake.reject(order) if not order.parent_id else None
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), stop_loss=Decimal("1.075"), take_profit=Decimal("1.09"))
    with pytest.raises(InvalidQuantity):  # "Order size exceeds the limit"
        await ib.broker.submit(order)
    child = await ib.report(order.client_order_id + "-SL", S.CANCELED)
    assert child.parent_client_order_id == order.client_order_id


async def test_the_same_client_order_id_is_never_placed_twice(ib: Harness) -> None:
    fill_at_once(ib.fake)
    first = await ib.broker.submit(make_order())
    again = await ib.broker.submit(make_order())
    assert again.status is S.FILLED and again.fills == first.fills
    assert len(ib.fake.messages(3)) == 1


async def test_a_fill_waits_briefly_for_its_commission_report(ib: Harness) -> None:
    report = await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.08")))
    assert report.status is S.ACCEPTED
    fake_order = ib.fake.order_by_ref(report.client_order_id)
    execution = ib.fake.fill(fake_order, "20000", "1.08", commission="2.00", send_commission=False)
    await ib.fake.wait_for(lambda: len(ib.fake.received) > 0)
    assert ib.of(report.client_order_id) == []
    ib.fake.send_commission(execution)
    filled = await ib.report(report.client_order_id, S.FILLED)
    assert filled.fills[0].commission == Decimal("2.00")


async def test_a_fill_whose_commission_never_comes_is_reported_after_the_wait(ib: Harness) -> None:
    report = await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.08")))
    ib.fake.fill(ib.fake.order_by_ref(report.client_order_id), "20000", "1.08", send_commission=False)
    filled = await ib.report(report.client_order_id, S.FILLED)
    assert filled.fills[0].commission == Decimal(0)


async def test_each_change_is_emitted_once(ib: Harness) -> None:
    report = await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.08")))
    fake_order = ib.fake.order_by_ref(report.client_order_id)
    ib.fake.send_status(fake_order)
    ib.fake.send_open_order(fake_order)
    ib.fake.fill(fake_order, "20000", "1.08")
    await ib.report(report.client_order_id, S.FILLED)
    ib.fake.send_status(fake_order)
    await ib.fake.wait_for(lambda: len(ib.fake.received) > 0)
    assert [r.status for r in ib.of(report.client_order_id)] == [S.FILLED]


# ------------------------------------------------------------------ cancel and modify


async def working(ib: Harness, **fields: Any) -> tuple[Order, FakeOrder]:
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), **fields)
    report = await ib.broker.submit(order)
    placed = order.model_copy(update={"broker_order_id": report.broker_order_id, "status": report.status})
    return placed, ib.fake.order_by_ref(order.client_order_id)


async def test_cancel_answers_canceled_after_ib_confirms(ib: Harness) -> None:
    order, fake_order = await working(ib)
    report = await ib.broker.cancel(order)
    assert report.status is S.CANCELED
    assert ib.fake.messages(4)[-1][2] == str(fake_order.order_id)
    assert ib.of(order.client_order_id) == []  # the answer told the router; nothing is emitted twice


async def test_a_cancel_that_came_too_late_is_order_not_found_and_the_order_keeps_its_fill(ib: Harness) -> None:
    order, fake_order = await working(ib)

    def too_late(o: FakeOrder) -> None:
        ib.fake.fill(o, o.quantity, "1.08")
        ib.fake.send_error(o, 10148, f"OrderId {o.order_id} that needs to be cancelled cannot be cancelled, state: Filled.")

    ib.fake.on_cancel = too_late
    with pytest.raises(OrderNotFound) as caught:
        await ib.broker.cancel(order)
    assert caught.value.broker_code == "10148"
    report = await ib.broker.lookup(order.client_order_id)
    assert report is not None and report.status is S.FILLED


async def test_a_refused_cancel_leaves_the_order_working(ib: Harness) -> None:
    order, fake_order = await working(ib)
    ib.fake.on_cancel = lambda o: ib.fake.send_error(o, 161, "Cancel attempted when order is not in a cancellable state.")
    with pytest.raises(OrderNotFound):
        await ib.broker.cancel(order)
    report = await ib.broker.lookup(order.client_order_id)
    assert report is not None and report.status is S.ACCEPTED
    changed = await ib.broker.modify(order, OrderChanges(limit_price=Decimal("1.0801")))  # ib_async had marked it Cancelled
    assert changed.status is S.ACCEPTED and changed.limit_price == Decimal("1.0801")
    ib.fake.fill(fake_order, fake_order.quantity, "1.0801")
    assert (await ib.report(order.client_order_id, S.FILLED)).fills


async def test_cancelling_an_order_ib_does_not_have_is_order_not_found(ib: Harness) -> None:
    with pytest.raises(OrderNotFound):
        await ib.broker.cancel(make_order("sma-20261122-000099", broker_order_id="999"))


async def test_modify_replaces_the_order_under_the_same_order_id(ib: Harness) -> None:
    order, fake_order = await working(ib)
    report = await ib.broker.modify(order, OrderChanges(limit_price=Decimal("1.0805"), quantity=Decimal("25000")))
    assert (report.status, report.limit_price, report.quantity) == (S.ACCEPTED, Decimal("1.0805"), Decimal("25000"))
    first, second = fake_order.history
    assert (first["orderId"], second["orderId"]) == (str(fake_order.order_id),) * 2
    assert (second["lmtPrice"], second["totalQuantity"], second["orderRef"]) == ("1.0805", "25000.0", order.client_order_id)
    assert len(ib.fake.orders) == 1


async def test_a_refused_modification_raises_and_the_order_keeps_working(ib: Harness) -> None:
    order, fake_order = await working(ib)
    ib.fake.on_modify = lambda o, old: ib.fake.refuse_modification(o, old)
    with pytest.raises(InvalidPrice) as caught:
        await ib.broker.modify(order, OrderChanges(limit_price=Decimal("1.08013")))
    assert caught.value.broker_code == "110"
    ib.fake.on_modify = ib.fake.echo
    report = await ib.broker.modify(order, OrderChanges(limit_price=Decimal("1.081")))
    assert report.status is S.ACCEPTED and report.limit_price == Decimal("1.081")


async def test_a_modification_ib_acknowledges_only_by_echo_is_answered(ib: Harness) -> None:
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), stop_loss=Decimal("1.07"))
    await ib.broker.submit(order)
    child_report = await ib.report(order.client_order_id + "-SL")
    child = make_order(order.client_order_id + "-SL", type="STOP", stop_price=Decimal("1.07"), side="SELL", broker_order_id=child_report.broker_order_id)
    ib.fake.on_modify = lambda o, old: ib.fake.send_open_order(o)  # a held child: TWS sends its terms, no new status
    report = await ib.broker.modify(child, OrderChanges(stop_price=Decimal("1.071")))
    assert (report.status, report.stop_price) == (S.ACCEPTED, Decimal("1.071"))


async def test_modifying_an_order_that_is_no_longer_working_is_order_not_found(ib: Harness) -> None:
    fill_at_once(ib.fake)
    report = await ib.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.08")))
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), broker_order_id=report.broker_order_id)
    with pytest.raises(OrderNotFound, match="FILLED"):
        await ib.broker.modify(order, OrderChanges(limit_price=Decimal("1.07")))


async def test_an_order_placed_under_another_client_id_is_neither_changed_nor_cancelled_by_its_number(fake: FakeTws, connect: BrokerFactory) -> None:
    earlier = await connect(client_id=8)  # the router used client id 8 before
    order, fake_order = await working(earlier)
    await earlier.broker.stop()
    ib = await connect()
    (listed,) = await ib.broker.open_orders()  # the router's reconciliation finds it working
    assert listed.client_order_id == order.client_order_id
    # An order id means something only for the client that placed it: sent by client 7, it would be a new order.
    with pytest.raises(InvalidRequest, match="client 8"):
        await ib.broker.modify(order, OrderChanges(limit_price=Decimal("1.0805")))
    with pytest.raises(InvalidRequest, match="client 8"):
        await ib.broker.cancel(order)
    assert list(fake.orders) == [(8, fake_order.order_id)] and fake.messages(4) == []
    assert fake_order.fields["lmtPrice"] == "1.08"


# --------------------------------------------------------------- unknown outcomes and lookup


async def test_silence_after_submit_is_an_unknown_outcome_and_lookup_finds_nothing(connect: BrokerFactory) -> None:
    ib = await connect(timeout=0.2)
    ib.fake.silent = True
    with pytest.raises(OutcomeUnknown):
        await ib.broker.submit(make_order())
    assert await ib.broker.lookup("sma-20261122-000001") is None


async def test_a_drop_before_the_acknowledgement_is_unknown_and_lookup_finds_the_order_after_reconnecting(ib: Harness) -> None:
    def drop_then_fill(order: FakeOrder) -> None:
        order.status = "Submitted"
        ib.fake.drop()
        ib.fake.fill(order, order.quantity, "1.0852")  # while the adapter is away

    ib.fake.on_place = drop_then_fill
    with pytest.raises(OutcomeUnknown, match="dropped"):
        await ib.broker.submit(make_order())
    report = await ib.broker.lookup("sma-20261122-000001")
    assert report is not None and report.status is S.FILLED
    assert [f.price for f in report.fills] == [Decimal("1.0852")]
    assert ib.broker.describe()["reconnects"] == 1


async def test_a_drop_before_ib_got_the_order_is_unknown_and_lookup_says_never_received(ib: Harness) -> None:
    ib.fake.silent = True
    ib.fake.on_place = lambda order: None

    async def drop_soon() -> None:
        await ib.fake.wait_for(lambda: bool(ib.fake.messages(3)))
        ib.fake.drop()

    import asyncio

    task = asyncio.get_running_loop().create_task(drop_soon())
    with pytest.raises(OutcomeUnknown):
        await ib.broker.submit(make_order())
    await task
    ib.fake.silent = False
    assert await ib.broker.lookup("sma-20261122-000001") is None


async def test_an_unclassified_error_on_a_new_order_is_unknown_and_lookup_finds_it_working(ib: Harness) -> None:
    assert UNCLASSIFIED not in ERRORS
    unclassified_error(ib.fake, keep=True)
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"))
    with pytest.raises(OutcomeUnknown) as caught:
        await ib.broker.submit(order)
    assert isinstance(caught.value, IbOutcomeUnknown)
    assert (caught.value.broker_code, caught.value.broker_message) == (str(UNCLASSIFIED), "A message the adapter has never seen")
    assert all(r.status is not S.REJECTED for r in ib.of(order.client_order_id))
    report = await ib.broker.lookup(order.client_order_id)
    working_order = ib.fake.order_by_ref(order.client_order_id)
    assert report is not None and report.status is S.ACCEPTED and report.broker_order_id == str(working_order.order_id)
    again = await ib.broker.submit(order)  # whoever asks again gets what TWS has, not a second order
    assert again.status is S.ACCEPTED
    ib.fake.fill(working_order, "20000", "1.08")
    assert (await ib.report(order.client_order_id, S.FILLED)).fills
    assert len(ib.fake.messages(3)) == 1


async def test_an_unclassified_error_on_a_new_order_tws_does_not_have_is_unknown_and_lookup_finds_nothing(ib: Harness) -> None:
    unclassified_error(ib.fake, keep=False)
    with pytest.raises(IbOutcomeUnknown):
        await ib.broker.submit(make_order())
    assert await ib.broker.lookup("sma-20261122-000001") is None
    assert await ib.broker.lookup("sma-20261122-000001") is None  # the router asks on its schedule; still nothing
    assert len(ib.fake.messages(3)) == 1
    assert ib.of("sma-20261122-000001") == []


async def test_an_unclassified_error_does_not_end_a_working_order(ib: Harness) -> None:
    order, fake_order = await working(ib)
    ib.fake.send_error(fake_order, UNCLASSIFIED, "A message the adapter has never seen")
    await ib.fake.wait_for(lambda: any(line.errorCode == UNCLASSIFIED for t in ib.broker._ib.trades() for line in t.log))
    report = await ib.broker.lookup(order.client_order_id)
    assert report is not None and report.status is S.ACCEPTED
    ib.fake.fill(fake_order, fake_order.quantity, "1.08")
    assert (await ib.report(order.client_order_id, S.FILLED)).fills
    assert [r.status for r in ib.of(order.client_order_id)] == [S.FILLED]


async def test_an_unclassified_answer_to_a_cancel_refuses_it_and_the_order_works_on(ib: Harness) -> None:
    order, fake_order = await working(ib)
    ib.fake.on_cancel = lambda o: ib.fake.send_error(o, UNCLASSIFIED, "A message the adapter has never seen")
    with pytest.raises(InvalidRequest) as caught:
        await ib.broker.cancel(order)
    assert caught.value.broker_code == str(UNCLASSIFIED)
    report = await ib.broker.lookup(order.client_order_id)
    assert report is not None and report.status is S.ACCEPTED


async def test_not_connected_is_connection_failed_and_nothing_is_sent(ib: Harness) -> None:
    await ib.fake.pause()
    await ib.fake.wait_for(lambda: not ib.broker.describe()["connected"])
    with pytest.raises(ConnectionFailed):
        await ib.broker.submit(make_order())
    await ib.fake.resume()


async def test_lookup_after_a_restart_finds_completed_orders_and_their_executions(fake: FakeTws, connect: BrokerFactory) -> None:
    fill_at_once(fake)
    first = await connect()
    await first.broker.submit(make_order())
    await first.broker.stop()
    second = await connect()
    report = await second.broker.lookup("sma-20261122-000001")
    assert report is not None and report.status is S.FILLED
    assert [f.trade_id for f in report.fills] == [fake.executions[0].exec_id]
    assert report.fills[0].commission == Decimal("1.25")
    assert second.reports == []  # what was there at start is for the router's recovery lookups, not pushed


async def test_a_bracket_child_of_an_earlier_run_is_reported_with_its_parent(fake: FakeTws, connect: BrokerFactory) -> None:
    first = await connect()
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"), stop_loss=Decimal("1.075"), take_profit=Decimal("1.09"), tag="b")
    await first.broker.submit(order)
    fake.fill(fake.order_by_ref(order.client_order_id), "20000", "1.08")
    await first.broker.stop()
    second = await connect()
    fake.fill(fake.order_by_ref(order.client_order_id + "-SL"), "20000", "1.075")
    stopped = await second.report(order.client_order_id + "-SL", S.FILLED)
    assert stopped.parent_client_order_id == order.client_order_id
    assert stopped.terms is not None and (stopped.terms.type, stopped.terms.stop_price) == (OrderType.STOP, Decimal("1.075"))
    profit = await second.report(order.client_order_id + "-TP", S.CANCELED)
    assert profit.parent_client_order_id == order.client_order_id


async def test_lookup_finds_an_order_working_under_another_client_id(fake: FakeTws, connect: BrokerFactory) -> None:
    earlier = await connect(client_id=8)  # the router used client id 8 before
    order, _ = await working(earlier)
    await earlier.broker.stop()
    ib = await connect()
    report = await ib.broker.lookup(order.client_order_id)  # None would tell the router IB never got it
    assert report is not None and report.status is S.ACCEPTED


async def test_open_orders_lists_ours_and_others(fake: FakeTws, connect: BrokerFactory) -> None:
    ours = await connect()
    other = await connect(client_id=8)
    await ours.broker.submit(make_order(type="LIMIT", limit_price=Decimal("1.08")))
    await other.broker.submit(make_order("by-hand", type="LIMIT", limit_price=Decimal("1.07")))
    fake.order_by_ref("by-hand").fields["orderRef"] = ""
    reports = {r.client_order_id: r for r in await ours.broker.open_orders()}
    foreign = f"ibkr-perm-{next(o.perm_id for o in fake.orders.values() if o.client_id == 8)}"
    assert set(reports) == {"sma-20261122-000001", foreign}
    terms = reports[foreign].terms
    assert terms is not None and terms.limit_price == Decimal("1.07")


# ----------------------------------------------------------------------- reads


async def test_positions_from_ib_with_the_portfolio_marks(fake: FakeTws, connect: BrokerFactory) -> None:
    fake.positions = {265598: (Decimal("100"), Decimal("190.25")), 12087792: (Decimal("-20000"), Decimal("1.0850"))}
    fake.marks = {265598: ("191.50", "125.00", "10.00")}
    ib = await connect()
    positions = {p.instrument: p for p in await ib.broker.positions()}
    aapl, eur = positions["AAPL"], positions["EUR_USD"]
    assert (aapl.quantity, aapl.average_price, aapl.market_price, aapl.unrealised_pnl, aapl.realised_pnl) == (
        Decimal("100"), Decimal("190.25"), Decimal("191.5"), Decimal("125"), Decimal("10"),
    )  # fmt: skip
    assert eur.quantity == Decimal("-20000")


async def test_account_summary(ib: Harness) -> None:
    fill_at_once(ib.fake)
    await ib.broker.submit(make_order())
    account = await ib.broker.account()
    assert account.currency == "USD"
    assert (account.equity, account.balance, account.buying_power) == (Decimal("100523.45"), Decimal("80210.1"), Decimal("401045.8"))
    assert (account.unrealised_pnl, account.realised_pnl, account.margin_used) == (Decimal("313.35"), Decimal("-12.4"), Decimal("5012.25"))
    assert account.commission == Decimal("1.25")
    assert ib.fake.messages(62)


async def test_the_commission_of_the_account_counts_only_its_own_executions(fake: FakeTws, connect: BrokerFactory) -> None:
    fake.accounts = ("DU123", "DU456")
    fill_at_once(fake)
    other = await connect(client_id=8, account="DU123")
    await other.broker.submit(make_order())
    ours = await connect(account="DU456")  # its session starts by reading every execution of the day
    assert (await ours.broker.account()).commission == Decimal(0)
    assert (await other.broker.account()).commission == Decimal("1.25")


async def test_describe(ib: Harness) -> None:
    fill_at_once(ib.fake)
    await ib.broker.submit(make_order())
    info = ib.broker.describe()
    assert info["type"] == "ibkr" and info["environment"] == "paper" and info["connected"] is True
    assert info["instruments"] == 4 and info["account"] == "DU123" and info["client_id"] == 7
    assert isinstance(info["last_request_latency_ms"], float)


async def test_instruments_take_their_rules_from_the_contract_details(ib: Harness) -> None:
    btc = ib.broker.instrument("BTC_USD")
    assert btc is not None
    assert (btc.price_increment, btc.quantity_increment, btc.min_quantity, btc.kind) == (Decimal("0.25"), Decimal("1E-8"), Decimal("0.0001"), "crypto")
    assert btc.extra["con_id"] == 479624278
    jpy = ib.broker.instrument("USD_JPY")
    assert jpy is not None and jpy.price_increment == Decimal("0.005") and jpy.currency == "JPY"
    assert ib.broker.capabilities.fractional_units and set(ib.broker.capabilities.instruments) == {"EUR_USD", "USD_JPY", "AAPL", "BTC_USD"}


async def test_an_instrument_ib_does_not_know_is_dropped(fake: FakeTws, connect: BrokerFactory) -> None:
    fake.contracts = [c for c in fake.contracts if c.symbol != "BTC"]
    ib = await connect()
    assert ib.broker.instrument("BTC_USD") is None
    assert "BTC_USD" not in ib.broker.capabilities.instruments
    with pytest.raises(InvalidInstrument):
        await ib.broker.submit(make_order(instrument="BTC_USD", quantity=Decimal("0.01")))


async def test_the_adapter_is_registered_as_ibkr() -> None:
    from brokers.registry import adapter_class, options_class

    assert adapter_class("ibkr") is IbkrBroker
    assert options_class("ibkr") is IbkrBroker.Options
    assert IbkrBroker.credential_fields == ()


# ------------------------------------------------------------------ races with TWS


async def test_a_fill_pushed_before_tws_lists_its_order_is_not_lost(fake: FakeTws, connect: BrokerFactory) -> None:
    first = await connect()
    order = make_order(type="LIMIT", limit_price=Decimal("1.08"))
    await first.broker.submit(order)
    await first.broker.stop()
    list_orders = fake._open_orders

    def fill_first(session: Any, fields: list[str]) -> None:
        # The order fills as the next session starts: its execution arrives before ib_async has a trade for it.
        fake._open_orders = list_orders  # type: ignore[method-assign]
        fake.fill(fake.order_by_ref(order.client_order_id), "20000", "1.08")
        list_orders(session, fields)

    fake._open_orders = fill_first  # type: ignore[method-assign]
    second = await connect()
    report = await second.broker.lookup(order.client_order_id)
    assert report is not None and report.status is S.FILLED
    assert [(f.trade_id, f.quantity, f.commission) for f in report.fills] == [(fake.executions[0].exec_id, Decimal("20000"), Decimal("1.25"))]


async def test_an_order_that_fills_while_its_modification_waits_for_the_rate_limit_is_not_modified(connect: BrokerFactory) -> None:
    import asyncio

    ib = await connect()
    order, fake_order = await working(ib)
    ib.broker._conn.bucket.block(0.2)  # the next message waits its turn

    async def fill_meanwhile() -> None:
        await asyncio.sleep(0.05)
        ib.fake.fill(fake_order, fake_order.quantity, "1.08")

    task = asyncio.get_running_loop().create_task(fill_meanwhile())
    with pytest.raises(OrderNotFound, match="FILLED"):
        await ib.broker.modify(order, OrderChanges(limit_price=Decimal("1.0805")))
    await task
    assert len(ib.fake.messages(3)) == 1  # nothing was sent for the filled order


async def test_a_cancel_waiting_for_the_rate_limit_across_a_reconnect_answers_for_the_new_session(connect: BrokerFactory) -> None:
    import asyncio

    ib = await connect()
    order, fake_order = await working(ib)
    ib.broker._conn.bucket.block(0.2)  # the next message waits its turn

    async def drop_meanwhile() -> None:
        await asyncio.sleep(0.02)
        ib.fake.drop()

    task = asyncio.get_running_loop().create_task(drop_meanwhile())
    report = await ib.broker.cancel(order)
    await task
    assert fake_order.status == "Cancelled"
    assert report.status is S.CANCELED
