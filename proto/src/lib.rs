//! Chokepoint's wire protocol: the generated tonic/prost code for `proto/chokepoint.proto`, the
//! protocol version, the descriptor set for server reflection, and the conversions between wire
//! messages and the domain types of the `agents` crate.
//!
//! Wire types never reach the simulation: the coordinator and the nodes convert at the edge with
//! `TryFrom`, which rejects malformed messages with a [`WireError`] naming the field. This crate
//! does no I/O of its own.

pub mod convert;

/// The generated code for package `chokepoint.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("chokepoint.v1");
}

/// The protocol version this build speaks. A node and a coordinator must agree exactly.
/// Version 2 added capacity, goods in transit, demand intensity, forecasts, announcements and
/// hoarding to the observations and specs. Version 3 added the join secret and the
/// deterministic flag to Hello, the first tick to Welcome, and Assign (agents moving between
/// nodes when one is lost or a replacement joins).
pub const PROTOCOL_VERSION: u32 = 3;

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("chokepoint_descriptor");

pub use convert::WireError;
