//! `chokepoint debrief`: the DVR console for a recorded run, served over HTTP. The page
//! (`dvr.html`, self-contained, no outside assets) moves a tick slider over the run; the API
//! answers with the world at any tick, rebuilt from the nearest snapshot. The "who knew what"
//! view asks `/api/nation/{code}`, which returns that nation's own books and public data only:
//! the server, not the page, decides what a nation could see.

use crate::history::{self, HistoryError};
use crate::run::lock;
use crate::store::{RunId, Store};
use crate::view::{AgentRow, MarketRow, NationRow, RestrictionRow, WorldView};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use engine::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::{Arc, Mutex};

const PAGE: &str = include_str!("dvr.html");

struct Debrief {
    store: Arc<Store>,
    run: RunId,
    scenario: Scenario,
    first_tick: u32,
    last_tick: u32,
    bookmarks: Vec<Bookmark>,
    /// The last world built, by tick: moving back and forth between two ticks costs nothing.
    cache: Mutex<Option<(u32, Arc<WorldView>)>>,
}

#[derive(Clone, Serialize)]
struct Bookmark {
    tick: u32,
    note: String,
}

#[derive(Serialize)]
struct RunInfo {
    run: u64,
    scenario: String,
    seed: u64,
    first_tick: u32,
    last_tick: u32,
    nations: Vec<String>,
    commodities: Vec<String>,
    bookmarks: Vec<Bookmark>,
}

#[derive(Deserialize)]
struct At {
    tick: Option<u32>,
}

#[derive(Serialize)]
struct Public {
    markets: Vec<MarketRow>,
    restrictions: Vec<RestrictionRow>,
}

#[derive(Serialize)]
struct Own {
    #[serde(flatten)]
    nation: NationRow,
    agents: Vec<AgentRow>,
}

#[derive(Serialize)]
struct NationView {
    nation: String,
    tick: u32,
    public: Public,
    own: Own,
}

/// An API error: its status and message, sent as `{"error": "..."}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

impl Debrief {
    fn tick(&self, at: &At) -> Result<u32, ApiError> {
        let tick = at.tick.ok_or_else(|| error(StatusCode::BAD_REQUEST, "give the tick as ?tick=T"))?;
        if tick < self.first_tick || tick > self.last_tick {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("tick {tick} is outside this run's recorded ticks {}..={}", self.first_tick, self.last_tick),
            ));
        }
        Ok(tick)
    }

    fn world(&self, tick: u32) -> Result<Arc<WorldView>, HistoryError> {
        if let Some((t, view)) = lock(&self.cache).as_ref()
            && *t == tick
        {
            return Ok(view.clone());
        }
        let (scenario, state, digest) = history::state_at(&self.store, self.run, tick)?;
        let view = Arc::new(WorldView::new(&scenario, &state, &digest));
        *lock(&self.cache) = Some((tick, view.clone()));
        Ok(view)
    }
}

async fn world_at(app: Arc<Debrief>, tick: u32) -> Result<Arc<WorldView>, ApiError> {
    tokio::task::spawn_blocking(move || app.world(tick))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

async fn run_info(State(app): State<Arc<Debrief>>) -> Json<RunInfo> {
    Json(RunInfo {
        run: app.run.0,
        scenario: app.scenario.name.clone(),
        seed: app.scenario.seed,
        first_tick: app.first_tick,
        last_tick: app.last_tick,
        nations: app.scenario.nations.iter().map(|n| n.code.clone()).collect(),
        commodities: app.scenario.commodities.iter().map(|c| c.code.clone()).collect(),
        bookmarks: app.bookmarks.clone(),
    })
}

async fn world(State(app): State<Arc<Debrief>>, Query(at): Query<At>) -> Result<Response, ApiError> {
    let tick = app.tick(&at)?;
    let view = world_at(app, tick).await?;
    Ok(Json(view.as_ref()).into_response())
}

async fn nation(
    State(app): State<Arc<Debrief>>,
    Path(code): Path<String>,
    Query(at): Query<At>,
) -> Result<Response, ApiError> {
    if app.scenario.nation_by_code(&code).is_none() {
        return Err(error(StatusCode::NOT_FOUND, format!("no nation {code} in this run")));
    }
    let tick = app.tick(&at)?;
    let view = world_at(app, tick).await?;
    // Only what the nation could know: public prices and announced restrictions, and its own
    // books. Other nations' treasuries, stockpiles and agents never leave the server.
    let public = Public { markets: view.markets.clone(), restrictions: view.restrictions.clone() };
    let Some(own) = view.nations.iter().find(|n| n.nation == code).cloned() else {
        return Err(error(StatusCode::NOT_FOUND, format!("no nation {code} in this run")));
    };
    let agents = view.agents.iter().filter(|a| a.nation == code).cloned().collect();
    Ok(Json(NationView { nation: code, tick, public, own: Own { nation: own, agents } }).into_response())
}

/// Serves the DVR console for `run` on `listener` until `shutdown` resolves.
pub async fn serve(
    store: Arc<Store>,
    run: RunId,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HistoryError> {
    let meta = store.run(run)?;
    let scenario = history::scenario_of(&meta)?;
    let first_tick = store.snapshot_ticks(run)?.first().copied().unwrap_or(0);
    let bookmarks = store
        .journal(run)?
        .into_iter()
        .map(|j| Bookmark { tick: j.tick, note: format!("{} (by {})", j.input.describe(&scenario), j.source) })
        .collect();
    let app = Arc::new(Debrief {
        store,
        run,
        scenario,
        first_tick,
        last_tick: meta.ticks_done,
        bookmarks,
        cache: Mutex::new(None),
    });
    let router = axum::Router::new()
        .route("/", get(page))
        .route("/api/run", get(run_info))
        .route("/api/world", get(world))
        .route("/api/nation/{code}", get(nation))
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| HistoryError::Refused(format!("the debrief server failed: {e}")))
}
