//! The native half of `chokepoint.node`, the Python agent node: the protocol's version and its
//! descriptor set (the bytes the coordinator serves for reflection, from which the Python
//! message classes are built, so they cannot disagree with the Rust side), and `Decider`, which
//! decides a batch of observations with the project's own rules (`agents::decide`, as the
//! Rust agent-node does) for the agents placed on the node. Messages cross as their protobuf
//! encoding and are converted with the `proto` crate's validating conversions.

use agents::rng::Streams;
use agents::{AgentId, AgentSpec, ObservationBatch};
use prost::Message;
use proto::v1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::collections::BTreeMap;

/// The specs of the agents a node runs, and the random streams of the run's seed: decides a
/// batch of observations exactly as the Rust agent-node would.
#[pyclass(name = "Decider", module = "chokepoint._native")]
#[derive(Default)]
pub struct PyDecider {
    specs: BTreeMap<AgentId, AgentSpec>,
    streams: Option<Streams>,
}

fn invalid(what: &str, e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("invalid {what} from the coordinator: {e}"))
}

#[pymethods]
impl PyDecider {
    #[new]
    fn new() -> PyDecider {
        PyDecider::default()
    }

    /// Starts running the agents in `add` (each an encoded `HostedAgent`, as in Welcome and
    /// Assign) and stops running those in `remove` (agent ids).
    fn assign(&mut self, add: Vec<Vec<u8>>, remove: Vec<u32>) -> PyResult<()> {
        let mut added = Vec::with_capacity(add.len());
        for bytes in add {
            let hosted = v1::HostedAgent::decode(bytes.as_slice()).map_err(|e| invalid("agent", e))?;
            let spec = hosted.spec.ok_or_else(|| invalid("agent", format!("agent#{} has no spec", hosted.agent)))?;
            let spec = AgentSpec::try_from(spec).map_err(|e| invalid("agent spec", e))?;
            added.push((AgentId(hosted.agent), spec));
        }
        for agent in remove {
            self.specs.remove(&AgentId(agent));
        }
        self.specs.extend(added);
        Ok(())
    }

    /// The ids of the agents run, in order.
    fn agents(&self) -> Vec<u32> {
        self.specs.keys().map(|a| a.0).collect()
    }

    fn __len__(&self) -> usize {
        self.specs.len()
    }

    /// Decides every agent of a batch (an encoded `Observations`) and returns the encoded
    /// `Actions` for the same tick, in batch order.
    fn decide<'py>(&mut self, py: Python<'py>, observations: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let wire = v1::Observations::decode(observations).map_err(|e| invalid("observations", e))?;
        let batch = ObservationBatch::try_from(wire).map_err(|e| invalid("observations", e))?;
        let streams = match &self.streams {
            Some(s) if s.seed() == batch.seed => s,
            _ => self.streams.insert(Streams::new(batch.seed)),
        };
        let specs = &self.specs;
        let encoded = py.detach(|| -> Result<Vec<u8>, String> {
            let mut actions = Vec::with_capacity(batch.agents.len());
            for obs in &batch.agents {
                let spec = specs
                    .get(&obs.agent)
                    .ok_or_else(|| format!("observation for {}, which this node does not run", obs.agent))?;
                actions.push(v1::AgentActions::from(&agents::decide(spec, obs, &batch.public, streams)));
            }
            Ok(v1::Actions { tick: batch.tick.0, actions }.encode_to_vec())
        });
        let encoded = encoded.map_err(|e| invalid("observations", e))?;
        Ok(PyBytes::new(py, &encoded))
    }
}

/// Adds the node's class and constants to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDecider>()?;
    m.add("PROTOCOL_VERSION", proto::PROTOCOL_VERSION)?;
    m.add("PROTO_DESCRIPTOR", PyBytes::new(m.py(), proto::FILE_DESCRIPTOR_SET))?;
    Ok(())
}
