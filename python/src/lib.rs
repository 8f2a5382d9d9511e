//! `chokepoint._native`, the Python extension module: a validated scenario (`Scenario`, with the
//! sweep's `--set` keys applied by the coordinator's own `sweep::apply`), an engine stepped in
//! this process (`Engine`: the coordinator's embedded `Sim`, so the digests are the binary's),
//! its tables as the text of the CSV files `chokepoint run` writes (the coordinator's own
//! `CsvOutputs`, kept in memory: no files), one sweep job's outcome measures
//! (`run_outcomes`, the coordinator's `sweep::run_job`), and the native half of the Python
//! agent node (`node`: the default decisions and the protocol's descriptor). Nothing here
//! re-implements the model or its outputs; the Python package (`chokepoint/`) turns the texts
//! into pandas DataFrames.

mod node;

use coordinator::output::CsvOutputs;
use coordinator::sim::Sim;
use coordinator::sweep;
use engine::scenario::{Scenario, ScenarioError};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::path::PathBuf;
use std::sync::Arc;

/// An instance of one of the package's own exception classes (`chokepoint.errors`), made with
/// `args` and keyword arguments `kwargs`.
fn package_error(py: Python<'_>, class: &str, args: (String,), kwargs: &Bound<'_, PyDict>) -> PyErr {
    let made = py.import("chokepoint.errors").and_then(|m| m.getattr(class)).and_then(|c| c.call(args, Some(kwargs)));
    match made {
        Ok(value) => PyErr::from_value(value),
        Err(e) => e,
    }
}

/// A `ScenarioError` as `chokepoint.errors.ScenarioError`, carrying file, line, column, field.
fn scenario_error(py: Python<'_>, e: &ScenarioError) -> PyErr {
    let kwargs = PyDict::new(py);
    let set = (|| -> PyResult<()> {
        kwargs.set_item("file", &e.file)?;
        kwargs.set_item("line", e.line)?;
        kwargs.set_item("column", e.column)?;
        kwargs.set_item("field", &e.field)?;
        kwargs.set_item("reason", &e.message)
    })();
    match set {
        Ok(()) => package_error(py, "ScenarioError", (e.to_string(),), &kwargs),
        Err(err) => err,
    }
}

/// A run that could not go on (an engine invariant, a failed host) as
/// `chokepoint.errors.SimulationError`.
fn simulation_error(py: Python<'_>, message: String, tick: u32) -> PyErr {
    let kwargs = PyDict::new(py);
    match kwargs.set_item("tick", tick) {
        Ok(()) => package_error(py, "SimulationError", (message,), &kwargs),
        Err(err) => err,
    }
}

/// A validated scenario. Immutable: `configured` returns a changed copy.
#[pyclass(name = "Scenario", module = "chokepoint._native", frozen)]
struct PyScenario {
    inner: Arc<Scenario>,
    /// What it was made from, so it can be made again (pickled to another process): the file
    /// name errors give and the sweep parameters applied, in order.
    file: String,
    settings: Vec<(String, String)>,
}

#[pymethods]
impl PyScenario {
    /// Reads and validates a scenario file (errors name its file, line and field).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyScenario> {
        coordinator::scenario_file::load(&path)
            .map(|s| PyScenario { inner: Arc::new(s), file: path.display().to_string(), settings: Vec::new() })
            .map_err(|e| scenario_error(py, &e))
    }

    /// Validates a scenario given as text; `file` is the name errors give it.
    #[staticmethod]
    #[pyo3(signature = (text, file = "<string>"))]
    fn parse(py: Python<'_>, text: &str, file: &str) -> PyResult<PyScenario> {
        engine::scenario::parse(text, file)
            .map(|s| PyScenario { inner: Arc::new(s), file: file.to_string(), settings: Vec::new() })
            .map_err(|e| scenario_error(py, &e))
    }

    /// A copy with another seed, tick count and sweep parameters (`(key, value)` pairs, the
    /// keys of `chokepoint sweep --set`), applied in that order.
    #[pyo3(signature = (seed = None, ticks = None, set = Vec::new()))]
    fn configured(&self, seed: Option<u64>, ticks: Option<u32>, set: Vec<(String, String)>) -> PyResult<PyScenario> {
        let mut s = Scenario::clone(&self.inner);
        if let Some(seed) = seed {
            s.seed = seed;
        }
        if let Some(ticks) = ticks {
            if ticks == 0 {
                return Err(PyValueError::new_err("ticks must be at least 1"));
            }
            s.ticks = ticks;
        }
        for (key, value) in &set {
            sweep::apply(&mut s, key, value).map_err(PyValueError::new_err)?;
        }
        let mut settings = self.settings.clone();
        settings.extend(set);
        Ok(PyScenario { inner: Arc::new(s), file: self.file.clone(), settings })
    }

    /// The sweep parameters applied so far, in order.
    #[getter]
    fn settings(&self) -> Vec<(String, String)> {
        self.settings.clone()
    }

    /// The scenario file's text.
    #[getter]
    fn source(&self) -> String {
        self.inner.source.clone()
    }

    /// The file name its errors give.
    #[getter]
    fn file(&self) -> String {
        self.file.clone()
    }

    /// Pickled as what it was made from: text, file name, seed, ticks and settings.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (String, String, u64, u32, Vec<(String, String)>))> {
        let me = slf.get();
        let remake = slf.get_type().getattr("_remake")?;
        Ok((remake, (me.inner.source.clone(), me.file.clone(), me.inner.seed, me.inner.ticks, me.settings.clone())))
    }

    /// The inverse of `__reduce__`.
    #[staticmethod]
    fn _remake(
        py: Python<'_>,
        text: &str,
        file: &str,
        seed: u64,
        ticks: u32,
        settings: Vec<(String, String)>,
    ) -> PyResult<PyScenario> {
        PyScenario::parse(py, text, file)?.configured(Some(seed), Some(ticks), settings)
    }

    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed
    }

    #[getter]
    fn ticks(&self) -> u32 {
        self.inner.ticks
    }

    #[getter]
    fn tick_days(&self) -> u32 {
        self.inner.tick_days
    }

    /// The nations' codes, in nation order.
    #[getter]
    fn nations(&self) -> Vec<String> {
        self.inner.nations.iter().map(|n| n.code.clone()).collect()
    }

    /// The commodities' codes, in commodity order.
    #[getter]
    fn commodities(&self) -> Vec<String> {
        self.inner.commodities.iter().map(|c| c.code.clone()).collect()
    }

    /// (nation, commodity) of every stockpile policy, the ones `stockpile.*` keys can set.
    #[getter]
    fn stockpiles(&self) -> Vec<(String, String)> {
        let s = &self.inner;
        let mut out = Vec::new();
        for n in &s.nations {
            for p in &n.stockpiles {
                out.push((n.code.clone(), s.commodity_code(p.commodity).to_string()));
            }
        }
        out
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!("Scenario({:?}, seed={}, ticks={}, {} agents)", s.name, s.seed, s.ticks, s.agents.len())
    }
}

/// A run stepped from Python: the embedded simulation (every agent decided in this process, as
/// `chokepoint run` does) and the rows of its CSV files so far, in memory.
#[pyclass(name = "Engine", module = "chokepoint._native", unsendable)]
struct PyEngine {
    scenario: Arc<Scenario>,
    file: String,
    settings: Vec<(String, String)>,
    sim: Sim,
    tables: CsvOutputs<Vec<u8>>,
    /// The last tick's digest (hex), if a tick has run.
    last_digest: Option<String>,
}

#[pymethods]
impl PyEngine {
    #[new]
    fn new(scenario: &PyScenario) -> PyEngine {
        let (file, settings) = (scenario.file.clone(), scenario.settings.clone());
        let scenario = scenario.inner.clone();
        PyEngine {
            file,
            settings,
            sim: Sim::embedded(scenario.clone()),
            tables: CsvOutputs::in_memory(&scenario),
            scenario,
            last_digest: None,
        }
    }

    /// Runs one tick; returns (the tick run, the state digest after it, hex).
    fn step(&mut self, py: Python<'_>) -> PyResult<(u32, String)> {
        let tick = self.sim.state().tick.0;
        if self.sim.is_finished() {
            return Err(simulation_error(py, format!("the run is complete ({} ticks)", self.scenario.ticks), tick));
        }
        let record = self.sim.step().map_err(|e| simulation_error(py, e.to_string(), tick))?;
        self.tables
            .write(&self.scenario, &record)
            .map_err(|e| simulation_error(py, format!("cannot keep the tick's rows: {e}"), tick))?;
        let digest = record.digest.to_string();
        self.last_digest = Some(digest.clone());
        Ok((record.tick.0, digest))
    }

    /// Runs to the end (or `ticks` more ticks); returns how many ran.
    #[pyo3(signature = (ticks = None))]
    fn run(&mut self, py: Python<'_>, ticks: Option<u32>) -> PyResult<u32> {
        let mut ran = 0;
        while !self.sim.is_finished() && ticks.is_none_or(|t| ran < t) {
            self.step(py)?;
            ran += 1;
        }
        Ok(ran)
    }

    /// The next tick to run.
    #[getter]
    fn tick(&self) -> u32 {
        self.sim.state().tick.0
    }

    #[getter]
    fn finished(&self) -> bool {
        self.sim.is_finished()
    }

    #[getter]
    fn scenario(&self) -> PyScenario {
        PyScenario { inner: self.scenario.clone(), file: self.file.clone(), settings: self.settings.clone() }
    }

    /// Every CSV file's name and text so far (header first), in the order `run` writes them.
    fn tables<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (name, text) in self.tables.texts() {
            out.set_item(name, String::from_utf8_lossy(text))?;
        }
        Ok(out)
    }

    /// The world state now, as plain values (see `state_dict`).
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, &self.scenario, self.sim.state())
    }

    /// An independent copy of this run at this tick, with its tables so far: stepping either
    /// leaves the other alone, and both go on exactly as this one would.
    fn fork(&self) -> PyEngine {
        let sim = if self.last_digest.is_none() {
            // Nothing has run: a fresh run also reports the events applied at tick 0.
            Sim::embedded(self.scenario.clone())
        } else {
            Sim::restore_embedded(self.scenario.clone(), self.sim.state().clone())
        };
        PyEngine {
            scenario: self.scenario.clone(),
            file: self.file.clone(),
            settings: self.settings.clone(),
            sim,
            tables: self.tables.clone(),
            last_digest: self.last_digest.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Engine({:?}, seed={}, tick {}/{})",
            self.scenario.name,
            self.scenario.seed,
            self.tick(),
            self.scenario.ticks
        )
    }
}

/// The state as a dict: `tick` (the next to run), `digest` (hex, the digest the last tick
/// reported), `agents` (name, kind, nation, cash in cents, holdings in kg by
/// "COMMODITY/stage"), `prices` (the last world price in cents per kg by market) and `encoded`
/// (the state's exact postcard encoding, the bytes the digest hashes).
fn state_dict<'py>(py: Python<'py>, s: &Scenario, state: &engine::world::WorldState) -> PyResult<Bound<'py, PyDict>> {
    let market = |m: agents::MarketId| format!("{}/{}", s.commodity_code(m.commodity), m.stage.as_str());
    let out = PyDict::new(py);
    out.set_item("tick", state.tick.0)?;
    out.set_item("digest", engine::digest::digest(state).to_string())?;
    let list = PyList::empty(py);
    for (def, a) in s.agents.iter().zip(&state.agents) {
        let d = PyDict::new(py);
        d.set_item("name", &def.name)?;
        d.set_item("kind", agent_kind(&def.spec))?;
        d.set_item("nation", s.nation_code(def.spec.nation()))?;
        d.set_item("cash_cents", a.cash.0)?;
        let holdings = PyDict::new(py);
        for (m, q) in a.holdings.iter() {
            holdings.set_item(market(*m), q.0)?;
        }
        d.set_item("holdings_kg", holdings)?;
        list.append(d)?;
    }
    out.set_item("agents", list)?;
    let prices = PyDict::new(py);
    for (i, m) in state.markets.iter().enumerate() {
        prices.set_item(market(agents::MarketId::from_index(i)), m.last_price.0)?;
    }
    out.set_item("prices", prices)?;
    let encoded = postcard::to_stdvec(state).map_err(|e| PyValueError::new_err(e.to_string()))?;
    out.set_item("encoded", PyBytes::new(py, &encoded))?;
    Ok(out)
}

fn agent_kind(spec: &agents::AgentSpec) -> &'static str {
    match spec {
        agents::AgentSpec::Nation { .. } => "nation",
        agents::AgentSpec::Miner { .. } => "miner",
        agents::AgentSpec::Refiner { .. } => "refiner",
        agents::AgentSpec::Manufacturer { .. } => "manufacturer",
    }
}

/// Runs `scenario` to its end as one sweep job and returns the sweep's outcome measures,
/// `(outcome, subject, value)`, exactly as `chokepoint sweep` writes them to runs.csv.
#[pyfunction]
#[pyo3(signature = (scenario, threads = 1))]
fn run_outcomes(py: Python<'_>, scenario: &PyScenario, threads: usize) -> PyResult<Vec<(String, String, f64)>> {
    let s = scenario.inner.clone();
    let job = sweep::Job { seed: s.seed, values: Vec::new() };
    let never = std::sync::atomic::AtomicBool::new(false);
    let result = py.detach(|| sweep::run_job(&s, &[], &job, threads.max(1), &never));
    result.map_err(|e| simulation_error(py, e.to_string(), 0))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScenario>()?;
    m.add_class::<PyEngine>()?;
    m.add_function(wrap_pyfunction!(run_outcomes, m)?)?;
    node::register(m)?;
    Ok(())
}
