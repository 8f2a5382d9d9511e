//! Chokepoint's simulation core: everything a run computes, and nothing that talks to the
//! outside. The engine hands out a tick's observations and takes its actions back
//! ([`Engine::begin_tick`], [`Engine::finish_tick`]); whoever drives it owns the hosts that decide
//! the agents, the deadlines, failures, storage and outputs.
//!
//! Map: `scenario` (the file format and its validation, with `locate` for line numbers and
//! `synth` for generated worlds), `world` (the state), `engine` (the tick), `market` (one call
//! auction), `policy` (restrictions in force), `digest` (the state's fingerprint), `record` (what
//! a tick reports).
//!
//! This crate depends on `agents` and pure libraries only; `tests/dependencies.rs` fails if a
//! runtime, network, storage or output library enters its dependency tree.

pub mod digest;
pub mod engine;
pub mod ids;
pub mod locate;
pub mod market;
pub mod mechanics;
pub mod policy;
pub mod record;
pub mod scenario;
pub mod synth;
pub mod tick;
pub mod world;

pub use engine::{Engine, EngineError, Input, InputError, Phase, Probe, TickActions};
pub use mechanics::ADMIT_AFFINITY;
pub use scenario::{Scenario, ScenarioError};
pub use tick::validate::MAX_ORDER_KG;
