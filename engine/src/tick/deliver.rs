//! Deliveries: shipments whose arrival tick has come reach their buyers.

use super::Ctx;

pub(crate) fn deliver(cx: &mut Ctx) {
    let due = cx.state.shipments.partition_point(|s| s.arrival <= cx.tick);
    for s in cx.state.shipments.drain(..due).collect::<Vec<_>>() {
        cx.state.agents[s.buyer.index()].add(s.market, s.quantity);
    }
}
