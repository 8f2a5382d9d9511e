//! The coordinator owns a run's outside world: the hosts that decide the agents (in this process
//! or on agent nodes over gRPC), the barrier and its deadlines, persistence in sled, the outputs,
//! and the external interfaces (the CLI, gRPC, the exercise and debrief consoles). The
//! simulation itself is the `engine` crate, which does no I/O; the coordinator drives it.
//!
//! Map: `hosts` (placement and the barrier over `AgentHost`s) and `sim` (the engine and its
//! hosts, stepped one tick at a time); `run` (the driver: outputs, journal, snapshots), `output`
//! (CSV files and the end-of-run summary, with `rows`, the tidy rows they share with exports), `store` (the only module touching sled), `history`
//! (resume, replay, fork, state), `serve`, `join` and `remote` (the coordinator as a gRPC server,
//! who may join its runs, and its remote hosts), `guard` and `tls` (the node port's defences and
//! TLS for every port), `exercise` (war-game mode), `debrief` (reports, exports, diffs, the DVR),
//! `sweep`, `view` (the world as `state` shows it), `metrics`, `scenario_file` and `cli`.

pub mod clean;
pub mod cli;
pub mod debrief;
pub mod durable;
pub mod exercise;
pub mod guard;
pub mod history;
pub mod hosts;
pub mod join;
pub mod journal;
pub mod metrics;
pub mod output;
pub mod remote;
pub mod rows;
pub mod run;
pub mod scenario_file;
pub mod serve;
pub mod signals;
pub mod sim;
pub mod store;
pub mod sweep;
pub mod time;
pub mod tls;
pub mod view;

pub use engine::{Engine, EngineError, Scenario, ScenarioError};
pub use hosts::Placement;
pub use scenario_file::load as load_scenario;
pub use sim::Sim;
