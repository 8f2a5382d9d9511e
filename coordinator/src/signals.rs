//! Stopping on a signal: Ctrl-C (SIGINT) and SIGTERM, which Kubernetes, Slurm and `kill` send,
//! are handled alike. Either one sets a stop flag the run checks between ticks, so its outputs
//! are flushed and it is recorded as interrupted; the exit status then says which signal it
//! was (130 for SIGINT, 143 for SIGTERM, as a shell reports a process killed by it). A second
//! signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Signal {
    /// The exit status of a process stopped by this signal: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// The two signals, listened to from when this is made (inside a tokio runtime): from then on
/// they no longer end the process by themselves.
pub struct Listener {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Listener {
    pub fn new() -> Listener {
        use tokio::signal::unix::{SignalKind, signal};
        Listener { interrupt: signal(SignalKind::interrupt()).ok(), terminate: signal(SignalKind::terminate()).ok() }
    }

    /// The next signal.
    pub async fn next(&mut self) -> Signal {
        async fn wait(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = wait(&mut self.interrupt) => Signal::Interrupt,
            () = wait(&mut self.terminate) => Signal::Terminate,
        }
    }
}

impl Default for Listener {
    fn default() -> Self {
        Listener::new()
    }
}

/// Waits (in a tokio runtime) for SIGINT or SIGTERM, listening from the first poll.
pub async fn received() -> Signal {
    Listener::new().next().await
}

/// A stop flag for work that runs outside a runtime, set by the first signal.
#[derive(Clone, Default)]
pub struct Watch {
    pub stop: Arc<AtomicBool>,
    got: Arc<Mutex<Option<Signal>>>,
}

impl Watch {
    /// Starts watching: a thread of its own waits for signals from now on.
    pub fn start() -> Watch {
        let watch = Watch::default();
        let w = watch.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        match runtime {
            Ok(runtime) => {
                // Listening starts before this returns, so no signal can slip in unhandled.
                let mut listener = {
                    let _entered = runtime.enter();
                    Listener::new()
                };
                std::thread::spawn(move || {
                    runtime.block_on(async {
                        let first = listener.next().await;
                        *crate::run::lock(&w.got) = Some(first);
                        w.stop.store(true, Ordering::SeqCst);
                        eprintln!("{}: stopping after this tick (again to stop at once)", first.name());
                        let second = listener.next().await;
                        std::process::exit(i32::from(second.exit_code()));
                    })
                });
            }
            Err(e) => tracing::warn!("cannot watch for Ctrl-C and SIGTERM: {e}"),
        }
        watch
    }

    /// The signal that set the flag, if one did.
    pub fn signal(&self) -> Option<Signal> {
        *crate::run::lock(&self.got)
    }
}
