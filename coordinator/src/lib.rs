//! The coordinator owns a run: the scenario, the world state, the clock, market clearing, policy
//! adjudication and the outputs. Agents are decided elsewhere, behind `agent_node::AgentHost`;
//! the embedded run uses an in-process host, so it differs from a distributed run only in
//! transport.
//!
//! Map: `scenario` (file format and validation, with `locate` for line numbers), `world` (the
//! state), `engine` (the tick), `market` (one call auction), `policy` (restrictions in force),
//! `digest`, `record` and `output` (what a tick reports and how it is written), `run` (the
//! embedded driver) and `cli` (the `chokepoint` command).

pub mod cli;
pub mod debrief;
pub mod digest;
pub mod engine;
pub mod exercise;
pub mod history;
pub mod locate;
pub mod market;
pub mod metrics;
pub mod output;
pub mod policy;
pub mod record;
pub mod remote;
pub mod run;
pub mod scenario;
pub mod serve;
pub mod store;
pub mod sweep;
pub mod synth;
pub mod view;
pub mod world;

pub use engine::{Engine, EngineError, Placement};
pub use scenario::{Scenario, ScenarioError};
