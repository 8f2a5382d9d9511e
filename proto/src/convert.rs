//! Conversions between wire messages (`crate::v1`) and domain types (`agents`). Domain → wire is
//! infallible; wire → domain checks every field and fails with a [`WireError`] that names it.
//! The conversions are exact (integers both ways), so a round trip returns the same value.

use crate::v1 as w;
use agents::observation::{Announcement, MarketView, StockpileView};
use agents::{
    AgentActions, AgentId, AgentMemory, AgentObservation, AgentSpec, CommodityId, MarketId, Money, NationId,
    ObservationBatch, Order, Price, PublicView, Quantity, Sector, Side, Stage, Tick,
};
use std::sync::Arc;

/// A wire message that does not describe a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}` has an unknown value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error("field `{field}` is out of range ({value})")]
    OutOfRange { field: &'static str, value: i64 },
}

fn nation(v: u32, field: &'static str) -> Result<NationId, WireError> {
    u16::try_from(v).map(NationId).map_err(|_| WireError::OutOfRange { field, value: i64::from(v) })
}

fn commodity(v: u32, field: &'static str) -> Result<CommodityId, WireError> {
    u16::try_from(v).map(CommodityId).map_err(|_| WireError::OutOfRange { field, value: i64::from(v) })
}

fn non_negative(v: i64, field: &'static str) -> Result<i64, WireError> {
    if v < 0 { Err(WireError::OutOfRange { field, value: v }) } else { Ok(v) }
}

fn stage(v: i32) -> Result<Stage, WireError> {
    match w::Stage::try_from(v) {
        Ok(w::Stage::Ore) => Ok(Stage::Ore),
        Ok(w::Stage::Refined) => Ok(Stage::Refined),
        Err(_) => Err(WireError::UnknownEnum { field: "stage", value: v }),
    }
}

fn sector(v: i32) -> Result<Sector, WireError> {
    Ok(match w::Sector::try_from(v) {
        Ok(w::Sector::Batteries) => Sector::Batteries,
        Ok(w::Sector::Renewables) => Sector::Renewables,
        Ok(w::Sector::Electronics) => Sector::Electronics,
        Ok(w::Sector::Defense) => Sector::Defense,
        Ok(w::Sector::Industry) => Sector::Industry,
        Err(_) => return Err(WireError::UnknownEnum { field: "sector", value: v }),
    })
}

fn wire_sector(s: Sector) -> w::Sector {
    match s {
        Sector::Batteries => w::Sector::Batteries,
        Sector::Renewables => w::Sector::Renewables,
        Sector::Electronics => w::Sector::Electronics,
        Sector::Defense => w::Sector::Defense,
        Sector::Industry => w::Sector::Industry,
    }
}

impl From<MarketId> for w::MarketId {
    fn from(m: MarketId) -> Self {
        let stage = match m.stage {
            Stage::Ore => w::Stage::Ore,
            Stage::Refined => w::Stage::Refined,
        };
        w::MarketId { commodity: u32::from(m.commodity.0), stage: stage as i32 }
    }
}

fn market(m: Option<w::MarketId>) -> Result<MarketId, WireError> {
    let m = m.ok_or(WireError::Missing("market"))?;
    Ok(MarketId::new(commodity(m.commodity, "market.commodity")?, stage(m.stage)?))
}

fn memory_to_wire(m: &AgentMemory) -> Vec<w::Forecast> {
    m.forecasts
        .iter()
        .map(|(market, p)| w::Forecast { market: Some((*market).into()), price_cents_per_kg: p.0 })
        .collect()
}

fn memory_from_wire(v: Vec<w::Forecast>) -> Result<AgentMemory, WireError> {
    let mut forecasts = v
        .into_iter()
        .map(|f| Ok((market(f.market)?, Price(non_negative(f.price_cents_per_kg, "memory.price_cents_per_kg")?))))
        .collect::<Result<Vec<_>, WireError>>()?;
    forecasts.sort();
    forecasts.dedup_by_key(|(m, _)| *m);
    Ok(AgentMemory { forecasts: forecasts.into() })
}

// --- Agent specs --------------------------------------------------------------------------------

impl From<&AgentSpec> for w::AgentSpec {
    fn from(s: &AgentSpec) -> Self {
        use w::agent_spec::Kind;
        let kind = match s {
            AgentSpec::Nation { nation } => Kind::Nation(w::NationSpec { nation: u32::from(nation.0) }),
            AgentSpec::Miner { nation, commodity, capacity_per_tick, unit_cost, inventory_cap_ticks } => {
                Kind::Miner(w::MinerSpec {
                    nation: u32::from(nation.0),
                    commodity: u32::from(commodity.0),
                    capacity_per_tick_kg: capacity_per_tick.0,
                    unit_cost_cents_per_kg: unit_cost.0,
                    inventory_cap_ticks: *inventory_cap_ticks,
                })
            }
            AgentSpec::Refiner {
                nation,
                commodity,
                capacity_per_tick,
                unit_cost,
                yield_bp,
                ore_target_ticks,
                hoard_ticks,
            } => Kind::Refiner(w::RefinerSpec {
                nation: u32::from(nation.0),
                commodity: u32::from(commodity.0),
                capacity_per_tick_kg: capacity_per_tick.0,
                unit_cost_cents_per_kg: unit_cost.0,
                yield_bp: *yield_bp,
                ore_target_ticks: *ore_target_ticks,
                hoard_ticks: *hoard_ticks,
            }),
            AgentSpec::Manufacturer {
                nation,
                sector,
                demand_per_tick,
                growth_bp_per_year,
                elasticity_milli,
                inventory_target_ticks,
            } => Kind::Manufacturer(w::ManufacturerSpec {
                nation: u32::from(nation.0),
                sector: wire_sector(*sector) as i32,
                demand: demand_per_tick
                    .iter()
                    .map(|(c, q)| w::Demand { commodity: u32::from(c.0), per_tick_kg: q.0 })
                    .collect(),
                growth_bp_per_year: *growth_bp_per_year,
                elasticity_milli: *elasticity_milli,
                inventory_target_ticks: *inventory_target_ticks,
            }),
        };
        w::AgentSpec { kind: Some(kind) }
    }
}

impl TryFrom<w::AgentSpec> for AgentSpec {
    type Error = WireError;
    fn try_from(s: w::AgentSpec) -> Result<Self, WireError> {
        use w::agent_spec::Kind;
        Ok(match s.kind.ok_or(WireError::Missing("agent_spec.kind"))? {
            Kind::Nation(n) => AgentSpec::Nation { nation: nation(n.nation, "nation")? },
            Kind::Miner(m) => AgentSpec::Miner {
                nation: nation(m.nation, "miner.nation")?,
                commodity: commodity(m.commodity, "miner.commodity")?,
                capacity_per_tick: Quantity(non_negative(m.capacity_per_tick_kg, "miner.capacity_per_tick_kg")?),
                unit_cost: Price(non_negative(m.unit_cost_cents_per_kg, "miner.unit_cost_cents_per_kg")?),
                inventory_cap_ticks: m.inventory_cap_ticks,
            },
            Kind::Refiner(r) => AgentSpec::Refiner {
                nation: nation(r.nation, "refiner.nation")?,
                commodity: commodity(r.commodity, "refiner.commodity")?,
                capacity_per_tick: Quantity(non_negative(r.capacity_per_tick_kg, "refiner.capacity_per_tick_kg")?),
                unit_cost: Price(non_negative(r.unit_cost_cents_per_kg, "refiner.unit_cost_cents_per_kg")?),
                yield_bp: r.yield_bp,
                ore_target_ticks: r.ore_target_ticks,
                hoard_ticks: r.hoard_ticks,
            },
            Kind::Manufacturer(m) => AgentSpec::Manufacturer {
                nation: nation(m.nation, "manufacturer.nation")?,
                sector: sector(m.sector)?,
                demand_per_tick: m
                    .demand
                    .into_iter()
                    .map(|d| {
                        Ok((
                            commodity(d.commodity, "demand.commodity")?,
                            Quantity(non_negative(d.per_tick_kg, "demand.per_tick_kg")?),
                        ))
                    })
                    .collect::<Result<_, WireError>>()?,
                growth_bp_per_year: m.growth_bp_per_year,
                elasticity_milli: m.elasticity_milli,
                inventory_target_ticks: m.inventory_target_ticks,
            },
        })
    }
}

// --- Observations ------------------------------------------------------------------------------

impl From<&PublicView> for w::PublicView {
    fn from(p: &PublicView) -> Self {
        w::PublicView {
            tick: p.tick.0,
            ticks_per_year: p.ticks_per_year,
            tick_days: p.tick_days,
            markets: p
                .markets
                .iter()
                .map(|m| w::MarketView {
                    market: Some(m.market.into()),
                    reference_cents_per_kg: m.reference.0,
                    price_min_cents_per_kg: m.price_min.0,
                    price_max_cents_per_kg: m.price_max.0,
                    last_price_cents_per_kg: m.last_price.0,
                    domestic_prices: m
                        .domestic_prices
                        .iter()
                        .map(|(n, p)| w::NationPrice { nation: u32::from(n.0), price_cents_per_kg: p.0 })
                        .collect(),
                    last_volume_kg: m.last_volume.0,
                })
                .collect(),
            announcements: p
                .announcements
                .iter()
                .map(|a| w::Announcement {
                    market: Some(a.market.into()),
                    exporter: u32::from(a.exporter.0),
                    effective_tick: a.effective.0,
                    affected: a.affected.iter().map(|n| u32::from(n.0)).collect(),
                    share_bp: a.share_bp,
                })
                .collect(),
        }
    }
}

impl TryFrom<w::PublicView> for PublicView {
    type Error = WireError;
    fn try_from(p: w::PublicView) -> Result<Self, WireError> {
        let markets = p
            .markets
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let market = market(m.market)?;
                if market.index() != i {
                    return Err(WireError::OutOfRange { field: "public.markets (order)", value: i as i64 });
                }
                Ok(MarketView {
                    market,
                    reference: Price(m.reference_cents_per_kg),
                    price_min: Price(m.price_min_cents_per_kg),
                    price_max: Price(m.price_max_cents_per_kg),
                    last_price: Price(m.last_price_cents_per_kg),
                    domestic_prices: m
                        .domestic_prices
                        .into_iter()
                        .map(|d| Ok((nation(d.nation, "domestic_prices.nation")?, Price(d.price_cents_per_kg))))
                        .collect::<Result<_, WireError>>()?,
                    last_volume: Quantity(m.last_volume_kg),
                })
            })
            .collect::<Result<_, WireError>>()?;
        let announcements = p
            .announcements
            .into_iter()
            .map(|a| {
                let mut affected = a
                    .affected
                    .into_iter()
                    .map(|n| nation(n, "announcements.affected"))
                    .collect::<Result<Vec<_>, WireError>>()?;
                affected.sort();
                Ok(Announcement {
                    market: market(a.market)?,
                    exporter: nation(a.exporter, "announcements.exporter")?,
                    effective: Tick(a.effective_tick),
                    affected,
                    share_bp: a.share_bp.min(10_000),
                })
            })
            .collect::<Result<_, WireError>>()?;
        Ok(PublicView {
            tick: Tick(p.tick),
            ticks_per_year: p.ticks_per_year,
            tick_days: p.tick_days,
            markets,
            announcements,
        })
    }
}

impl From<&AgentObservation> for w::AgentObservation {
    fn from(o: &AgentObservation) -> Self {
        w::AgentObservation {
            agent: o.agent.0,
            memory: memory_to_wire(&o.memory),
            cash_cents: o.cash.0,
            holdings: o
                .holdings
                .iter()
                .map(|(m, q)| w::Holding { market: Some((*m).into()), quantity_kg: q.0 })
                .collect(),
            stockpiles: o
                .stockpiles
                .iter()
                .map(|s| w::StockpileView {
                    commodity: u32::from(s.commodity.0),
                    stock_kg: s.stock.0,
                    target_days: s.target_days,
                    buy_max_price_bp: s.buy_max_price_bp,
                    release_price_bp: s.release_price_bp,
                    release_on_shortage: s.release_on_shortage,
                    consumption_per_tick_kg: s.consumption_per_tick.0,
                    shortage_last_tick_kg: s.shortage_last_tick.0,
                    ordered_release_kg: s.ordered_release.0,
                    price_forecast_cents_per_kg: s.price_forecast.0,
                    demand_forecast_kg: s.demand_forecast.0,
                })
                .collect(),
            capacity_kg: o.capacity.0,
            incoming: o
                .incoming
                .iter()
                .map(|(m, q)| w::Holding { market: Some((*m).into()), quantity_kg: q.0 })
                .collect(),
            intensity: o
                .intensity_bp
                .iter()
                .map(|(c, bp)| w::Intensity { commodity: u32::from(c.0), bp: *bp })
                .collect(),
        }
    }
}

impl TryFrom<w::AgentObservation> for AgentObservation {
    type Error = WireError;
    fn try_from(o: w::AgentObservation) -> Result<Self, WireError> {
        Ok(AgentObservation {
            agent: AgentId(o.agent),
            memory: memory_from_wire(o.memory)?,
            cash: Money(o.cash_cents),
            holdings: o
                .holdings
                .into_iter()
                .map(|h| Ok((market(h.market)?, Quantity(h.quantity_kg))))
                .collect::<Result<_, WireError>>()?,
            stockpiles: o
                .stockpiles
                .into_iter()
                .map(|s| {
                    Ok(StockpileView {
                        commodity: commodity(s.commodity, "stockpile.commodity")?,
                        stock: Quantity(s.stock_kg),
                        target_days: s.target_days,
                        buy_max_price_bp: s.buy_max_price_bp,
                        release_price_bp: s.release_price_bp,
                        release_on_shortage: s.release_on_shortage,
                        consumption_per_tick: Quantity(s.consumption_per_tick_kg),
                        shortage_last_tick: Quantity(s.shortage_last_tick_kg),
                        ordered_release: Quantity(s.ordered_release_kg),
                        price_forecast: Price(s.price_forecast_cents_per_kg),
                        demand_forecast: Quantity(s.demand_forecast_kg),
                    })
                })
                .collect::<Result<_, WireError>>()?,
            capacity: Quantity(non_negative(o.capacity_kg, "capacity_kg")?),
            incoming: o
                .incoming
                .into_iter()
                .map(|h| Ok((market(h.market)?, Quantity(non_negative(h.quantity_kg, "incoming.quantity_kg")?))))
                .collect::<Result<_, WireError>>()?,
            intensity_bp: o
                .intensity
                .into_iter()
                .map(|i| Ok((commodity(i.commodity, "intensity.commodity")?, i.bp)))
                .collect::<Result<_, WireError>>()?,
        })
    }
}

impl From<&ObservationBatch> for w::Observations {
    fn from(b: &ObservationBatch) -> Self {
        w::Observations {
            tick: b.tick.0,
            seed: b.seed,
            public: Some(b.public.as_ref().into()),
            agents: b.agents.iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<w::Observations> for ObservationBatch {
    type Error = WireError;
    fn try_from(b: w::Observations) -> Result<Self, WireError> {
        Ok(ObservationBatch {
            tick: Tick(b.tick),
            seed: b.seed,
            public: Arc::new(b.public.ok_or(WireError::Missing("public"))?.try_into()?),
            agents: b.agents.into_iter().map(TryInto::try_into).collect::<Result<_, WireError>>()?,
        })
    }
}

// --- Actions -----------------------------------------------------------------------------------

impl From<&AgentActions> for w::AgentActions {
    fn from(a: &AgentActions) -> Self {
        w::AgentActions {
            agent: a.agent.0,
            memory: memory_to_wire(&a.memory),
            orders: a
                .orders
                .iter()
                .map(|o| w::Order {
                    market: Some(o.market.into()),
                    side: match o.side {
                        Side::Buy => w::Side::Buy as i32,
                        Side::Sell => w::Side::Sell as i32,
                    },
                    quantity_kg: o.quantity.0,
                    limit_cents_per_kg: o.limit.0,
                    domestic_only: o.domestic_only,
                })
                .collect(),
            produce_kg: a.produce.0,
            consume: a
                .consume
                .iter()
                .map(|(c, q)| w::Consumption { commodity: u32::from(c.0), quantity_kg: q.0 })
                .collect(),
        }
    }
}

impl TryFrom<w::AgentActions> for AgentActions {
    type Error = WireError;
    fn try_from(a: w::AgentActions) -> Result<Self, WireError> {
        let orders = a
            .orders
            .into_iter()
            .map(|o| {
                let side = match w::Side::try_from(o.side) {
                    Ok(w::Side::Buy) => Side::Buy,
                    Ok(w::Side::Sell) => Side::Sell,
                    Err(_) => return Err(WireError::UnknownEnum { field: "order.side", value: o.side }),
                };
                Ok(Order {
                    market: market(o.market)?,
                    side,
                    quantity: Quantity(non_negative(o.quantity_kg, "order.quantity_kg")?),
                    limit: Price(non_negative(o.limit_cents_per_kg, "order.limit_cents_per_kg")?),
                    domestic_only: o.domestic_only,
                })
            })
            .collect::<Result<_, WireError>>()?;
        Ok(AgentActions {
            agent: AgentId(a.agent),
            memory: memory_from_wire(a.memory)?,
            orders,
            produce: Quantity(non_negative(a.produce_kg, "produce_kg")?),
            consume: a
                .consume
                .into_iter()
                .map(|c| {
                    Ok((
                        commodity(c.commodity, "consume.commodity")?,
                        Quantity(non_negative(c.quantity_kg, "consume.quantity_kg")?),
                    ))
                })
                .collect::<Result<_, WireError>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_bad_values_are_named() {
        let a = AgentActions {
            agent: AgentId(4),
            memory: AgentMemory { forecasts: vec![(MarketId::ore(CommodityId(1)), Price(123))].into() },
            orders: vec![Order {
                market: MarketId::refined(CommodityId(2)),
                side: Side::Sell,
                quantity: Quantity(10),
                limit: Price(99),
                domestic_only: true,
            }],
            produce: Quantity(5),
            consume: vec![(CommodityId(2), Quantity(7))],
        };
        let wire: w::AgentActions = (&a).into();
        assert_eq!(AgentActions::try_from(wire.clone()).unwrap(), a);
        let mut bad = wire.clone();
        bad.orders[0].quantity_kg = -1;
        assert_eq!(
            AgentActions::try_from(bad).unwrap_err(),
            WireError::OutOfRange { field: "order.quantity_kg", value: -1 }
        );
        let mut bad = wire;
        bad.orders[0].side = 9;
        assert!(matches!(AgentActions::try_from(bad), Err(WireError::UnknownEnum { field: "order.side", .. })));
    }
}
