//! The single entry point a host calls: one agent's observation in, its actions out.

use crate::action::AgentActions;
use crate::ids::Tick;
use crate::observation::{AgentObservation, AgentSpec, PublicView};
use crate::rng::{Purpose, Streams};
use crate::units::Price;
use crate::{manufacturer, miner, nation, refiner};
use rand::Rng;

/// Everything a decision may depend on besides the agent's own observation.
pub struct Context<'a> {
    pub public: &'a PublicView,
    pub streams: &'a Streams,
    /// The agent's jitter draw for this tick, drawn once: every call to `jitter` for the same
    /// agent at the same tick uses the stream's first number, so it need only be drawn once.
    jitter_bp: std::cell::Cell<Option<(crate::ids::AgentId, i64, i64)>>,
}

impl Context<'_> {
    pub fn tick(&self) -> Tick {
        self.public.tick
    }

    /// `price` moved by up to ±`spread_bp` basis points, drawn from the agent's price stream
    /// (the first draw of that stream at this tick, for every call).
    pub fn jitter(&self, obs: &AgentObservation, price: Price, spread_bp: i64) -> Price {
        let bp = match self.jitter_bp.get() {
            Some((agent, spread, bp)) if agent == obs.agent && spread == spread_bp => bp,
            _ => {
                let mut rng = self.streams.stream(obs.agent, self.tick(), Purpose::PriceJitter);
                let bp = rng.random_range(-spread_bp..=spread_bp);
                self.jitter_bp.set(Some((obs.agent, spread_bp, bp)));
                bp
            }
        };
        price.scale_floor(10_000 + bp, 10_000)
    }
}

/// Decides one agent's actions for the tick. Pure: the same inputs always give the same output.
pub fn decide(spec: &AgentSpec, obs: &AgentObservation, public: &PublicView, streams: &Streams) -> AgentActions {
    let ctx = Context { public, streams, jitter_bp: std::cell::Cell::new(None) };
    match spec {
        AgentSpec::Nation { nation } => nation::decide(*nation, obs, &ctx),
        AgentSpec::Miner { .. } => miner::decide(spec, obs, &ctx),
        AgentSpec::Refiner { .. } => refiner::decide(spec, obs, &ctx),
        AgentSpec::Manufacturer { .. } => manufacturer::decide(spec, obs, &ctx),
    }
}
