//! `chokepoint debrief`: the DVR console for a recorded run, served over HTTP. The page
//! (`dvr.html`, self-contained, no outside assets) moves a tick slider over the run; the API
//! answers with the world at any tick, rebuilt from the nearest snapshot, with its price and
//! stock history, what changed in the tick before, the journal and the situation reports. The
//! "who knew what" view asks `/api/nation/{code}`, which returns what that nation had at that
//! tick (`knew`): the server, not the page, decides what a nation could see. `/api/run` carries
//! no journal: the ground-truth journal comes with `/api/world` only.

use super::{RunData, knew};
use crate::history::{self, HistoryError};
use crate::journal::JournalInput;
use crate::run::lock;
use crate::store::{RunId, Store};
use crate::view::WorldView;
use agents::observation::Announcement;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use engine::world::WorldState;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::{Arc, Mutex};

const PAGE: &str = include_str!("dvr.html");

struct Debrief {
    store: Arc<Store>,
    data: RunData,
    last_tick: u32,
    /// The run's situation reports (an exercise's): (first tick of the turn, nation, report).
    sitreps: Vec<(u32, u16, Value)>,
    /// The last world built, by tick: moving back and forth between two ticks costs nothing.
    cache: Mutex<Option<(u32, Arc<At>)>>,
}

/// The world at one tick: its view, its state, and the announcements the public saw.
struct At {
    view: WorldView,
    state: WorldState,
    announcements: Vec<Announcement>,
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
    kind: String,
    players: Vec<String>,
    /// The ticks turns began at (an exercise's), for the charts.
    turn_starts: Vec<u32>,
}

#[derive(Deserialize)]
struct TickQuery {
    tick: Option<u32>,
}

/// An API error: its status and message, sent as `{"error": "..."}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

impl Debrief {
    fn tick(&self, at: &TickQuery) -> Result<u32, ApiError> {
        let tick = at.tick.ok_or_else(|| error(StatusCode::BAD_REQUEST, "give the tick as ?tick=T"))?;
        let first = self.data.first_tick;
        if tick < first || tick > self.last_tick {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("tick {tick} is outside this run's recorded ticks {first}..={}", self.last_tick),
            ));
        }
        Ok(tick)
    }

    fn world(&self, tick: u32) -> Result<Arc<At>, HistoryError> {
        if let Some((t, at)) = lock(&self.cache).as_ref()
            && *t == tick
        {
            return Ok(at.clone());
        }
        let (engine, _) = history::engine_at(&self.store, self.data.run, tick)?;
        let state = engine.state().clone();
        let digest = engine::digest::digest(&state).to_string();
        let view = WorldView::new(engine.scenario(), &state, &digest);
        let at = Arc::new(At { view, state, announcements: engine.engine.announcements() });
        *lock(&self.cache) = Some((tick, at.clone()));
        Ok(at)
    }
}

async fn world_at(app: Arc<Debrief>, tick: u32) -> Result<Arc<At>, ApiError> {
    tokio::task::spawn_blocking(move || app.world(tick))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE.replace("/*CHARTS*/", crate::exercise::CHARTS_JS))
}

async fn run_info(State(app): State<Arc<Debrief>>) -> Json<RunInfo> {
    let d = &app.data;
    let live = crate::journal::live(d.journal.clone());
    Json(RunInfo {
        run: d.run.0,
        scenario: d.scenario.name.clone(),
        seed: d.scenario.seed,
        first_tick: d.first_tick,
        last_tick: app.last_tick,
        nations: d.scenario.nations.iter().map(|n| n.code.clone()).collect(),
        commodities: d.scenario.commodities.iter().map(|c| c.code.clone()).collect(),
        kind: super::kind(d),
        players: d.meta.exercise.as_ref().map(|x| x.players.clone()).unwrap_or_default(),
        turn_starts: live.iter().filter(|j| matches!(j.input, JournalInput::Turn { .. })).map(|j| j.tick).collect(),
    })
}

async fn world(State(app): State<Arc<Debrief>>, Query(q): Query<TickQuery>) -> Result<Response, ApiError> {
    let tick = app.tick(&q)?;
    let at = world_at(app.clone(), tick).await?;
    let mut body =
        serde_json::to_value(&at.view).map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let s = &app.data.scenario;
    body["announced"] = json!(knew::announced(s, tick, &at.announcements));
    body["changes"] = knew::changes(&app.data, tick, None);
    body["history"] = knew::history(&app.data, tick, None);
    body["journal"] = json!(knew::journal(&app.data, tick));
    body["sitreps"] = json!(knew::reports(&app.sitreps, tick, None));
    body["credit"] = json!(at.view.agents.iter().any(|a| a.cash_cents < 0).then_some(knew::CREDIT));
    Ok(Json(body).into_response())
}

async fn nation(
    State(app): State<Arc<Debrief>>,
    Path(code): Path<String>,
    Query(q): Query<TickQuery>,
) -> Result<Response, ApiError> {
    let Some(n) = app.data.scenario.nation_by_code(&code) else {
        return Err(error(StatusCode::NOT_FOUND, format!("no nation {code} in this run")));
    };
    let tick = app.tick(&q)?;
    let at = world_at(app.clone(), tick).await?;
    let view = knew::NationAt {
        data: &app.data,
        view: &at.view,
        state: &at.state,
        announcements: &at.announcements,
        sitreps: &app.sitreps,
    };
    Ok(Json(view.view(n, &code, tick)).into_response())
}

/// Serves the DVR console for `run` on `listener` until `shutdown` resolves. The run is
/// re-executed once first, for its history.
pub async fn serve(
    store: Arc<Store>,
    run: RunId,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HistoryError> {
    let meta = store.run(run)?;
    let collected = store.clone();
    let data = tokio::task::spawn_blocking(move || super::collect(&collected, run))
        .await
        .map_err(|e| HistoryError::Refused(format!("the debrief could not read the run: {e}")))??;
    let sitreps = store.sitreps(run)?;
    let app = Arc::new(Debrief { store, data, last_tick: meta.ticks_done, sitreps, cache: Mutex::new(None) });
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
