//! An exercise as a library call, the way `serve` is one: [`create`] records the run and makes
//! the access tokens; [`Exercise::serve`] runs the engine on its own thread and serves the
//! console (HTTP) and the gRPC interface on the listeners it is given (over TLS when the options
//! hold a certificate) until the exercise ends or `shutdown` resolves. The `exercise` command only parses its flags, prints and calls these.

use super::auth::{Role, new_token, token_hash};
use super::{Api, Game, Setup, Shared};
use crate::run::{Outcome, Persist, RunError, RunOptions};
use crate::sim::Sim;
use crate::store::{ExerciseMeta, RunId, RunMeta, Store, StoreError};
use engine::Scenario;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How an exercise is set up and recorded.
#[derive(Clone, Debug)]
pub struct Options {
    pub setup: Setup,
    /// Where the scenario came from (recorded with the run).
    pub scenario_path: String,
    /// Where the CSV outputs go.
    pub out: PathBuf,
    pub snapshot_every: u32,
    /// Serve both ports over TLS with this certificate and key.
    pub tls: Option<crate::tls::Tls>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExerciseError {
    #[error("--snapshot-every must be at least 1")]
    SnapshotEvery,
    #[error("--turn must be between 1 and 520 ticks (got {0})")]
    Turn(u32),
    #[error("cannot make an access token: {0}")]
    Token(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("the web console failed: {0}")]
    Http(std::io::Error),
    #[error("the exercise's engine thread panicked")]
    Thread,
}

/// A recorded exercise, ready to be served.
pub struct Exercise {
    pub run: RunId,
    pub scenario: Arc<Scenario>,
    /// (role, token): each played nation's code, and "control". Shown once: only their hashes
    /// are stored.
    pub tokens: Vec<(String, String)>,
    store: Arc<Store>,
    options: Options,
}

/// Records a new exercise of `scenario` and makes one token per played nation and one for
/// control.
pub fn create(store: Arc<Store>, scenario: Scenario, options: Options) -> Result<Exercise, ExerciseError> {
    if options.snapshot_every < 1 {
        return Err(ExerciseError::SnapshotEvery);
    }
    if !(1..=520).contains(&options.setup.turn_ticks) {
        return Err(ExerciseError::Turn(options.setup.turn_ticks));
    }
    let mut tokens = Vec::new();
    for n in &options.setup.players {
        tokens.push((scenario.nation_code(*n).to_string(), new_token().map_err(ExerciseError::Token)?));
    }
    tokens.push(("control".to_string(), new_token().map_err(ExerciseError::Token)?));
    let out = options.out.display().to_string();
    let mut meta =
        RunMeta::new(&scenario, options.scenario_path.clone(), out, options.snapshot_every, "exercise".into());
    meta.exercise = Some(ExerciseMeta {
        players: options.setup.players.iter().map(|n| scenario.nation_code(*n).to_string()).collect(),
        turn_ticks: options.setup.turn_ticks,
        token_hashes: tokens.iter().map(|(role, t)| (role.clone(), token_hash(t))).collect(),
        ai_from: None,
    });
    let run = store.create_run(&meta)?;
    Ok(Exercise { run, scenario: Arc::new(scenario), tokens, store, options })
}

impl Exercise {
    /// Runs the exercise to its end: the engine on its own thread, the console on `http`, the
    /// gRPC interface on `grpc`. `shutdown` (Ctrl-C, say) ends it as control's "end" does.
    pub async fn serve(
        self,
        http: TcpListener,
        grpc: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Outcome, ExerciseError> {
        let sim = Sim::embedded(self.scenario.clone());
        let shared = Shared::new(Game::new(self.scenario.clone(), self.options.setup.clone(), &sim.engine));
        let roles = self
            .tokens
            .iter()
            .zip(self.options.setup.players.iter().map(|n| Role::Player(*n)).chain([Role::Control]))
            .map(|((_, t), role)| (token_hash(t), role))
            .collect();
        let persist = Persist { store: self.store.clone(), run: self.run, snapshot_every: self.options.snapshot_every };
        let options = RunOptions { out: Some(self.options.out.clone()), progress: false, append: false };
        let engine_shared = shared.clone();
        let worker = std::thread::spawn(move || super::play(&engine_shared, sim, &options, Some(&persist)));
        let api = Api::new(shared.clone(), roles);
        let tls = self.options.tls.clone();
        let http = crate::tls::HttpListener::new(http, tls.as_ref()).map_err(ExerciseError::Http)?;
        let grpc = tokio::spawn(super::grpc::serve(api.clone(), grpc, shared.clone(), tls));
        let app = super::http::router(api).into_make_service_with_connect_info::<crate::tls::Peer>();
        let stop = shared.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop.game().ended = true;
            stop.notify();
        });
        let served = axum::serve(http, app).with_graceful_shutdown(ended(shared.clone())).await;
        let _ = grpc.await;
        let outcome = tokio::task::spawn_blocking(move || worker.join())
            .await
            .map_err(|_| ExerciseError::Thread)?
            .map_err(|_| ExerciseError::Thread)??;
        served.map_err(ExerciseError::Http)?;
        Ok(outcome)
    }
}

/// Resolves once the exercise has ended, after giving the consoles a last look at its final
/// state.
async fn ended(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if shared.game().ended {
            tokio::time::sleep(Duration::from_millis(500)).await;
            break;
        }
    }
}
