//! Tick latency by phase, in HDR histograms (microseconds): observe (build and send
//! observations), wait (for every host's actions), apply (validate, apply, check, digest) and
//! persist (write outputs). Wall time lives only here and never feeds back into a run.

use crate::sim::PhaseTimes;
use hdrhistogram::Histogram;
use std::time::Duration;

pub const PHASES: [&str; 5] = ["observe", "wait", "apply", "persist", "tick"];

/// Percentiles of one phase, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhaseSummary {
    pub phase: &'static str,
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

#[derive(Clone, Debug)]
pub struct Latency {
    histograms: Vec<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    pub fn new() -> Latency {
        // Up to an hour, three significant digits: the bounds cannot be wrong, so `new` cannot fail.
        let h = || Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds");
        Latency { histograms: PHASES.iter().map(|_| h()).collect() }
    }

    fn record_us(&mut self, phase: usize, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 3_600_000_000);
        // Values are clamped into the histogram's bounds, so recording cannot fail.
        let _ = self.histograms[phase].record(us);
    }

    /// Records one tick's phases and its whole duration.
    pub fn record(&mut self, times: &PhaseTimes, persist: Duration) {
        self.record_us(0, times.observe);
        self.record_us(1, times.wait);
        self.record_us(2, times.apply);
        self.record_us(3, persist);
        self.record_us(4, times.observe + times.wait + times.apply + persist);
    }

    pub fn summaries(&self) -> Vec<PhaseSummary> {
        PHASES
            .iter()
            .zip(&self.histograms)
            .map(|(phase, h)| PhaseSummary {
                phase,
                count: h.len(),
                p50_us: h.value_at_quantile(0.50),
                p90_us: h.value_at_quantile(0.90),
                p99_us: h.value_at_quantile(0.99),
                max_us: h.max(),
            })
            .collect()
    }

    /// The table printed at the end of a run.
    pub fn render(&self) -> String {
        let mut out = String::from("Tick latency by phase (µs)\n");
        out.push_str(&format!(
            "  {:<8} {:>8} {:>10} {:>10} {:>10} {:>10}\n",
            "phase", "ticks", "p50", "p90", "p99", "max"
        ));
        for s in self.summaries() {
            out.push_str(&format!(
                "  {:<8} {:>8} {:>10} {:>10} {:>10} {:>10}\n",
                s.phase, s.count, s.p50_us, s.p90_us, s.p99_us, s.max_us
            ));
        }
        out
    }
}
