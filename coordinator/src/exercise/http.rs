//! The exercise's HTTP interface: the console page and a JSON API behind bearer tokens.
//!
//! * `GET /` — the console (self-contained: no asset comes from outside).
//! * `GET /api/whoami` — the role of the token: a nation or control.
//! * `GET /api/player` — the player's view (`views::player`).
//! * `POST /api/orders` — sealed orders for the coming turn; `POST /api/message`.
//! * `GET /api/control` — ground truth for control; `POST /api/control` — the clock;
//!   `POST /api/control/inject`; `POST /api/control/note`.
//!
//! Each route decodes its body into a [`Command`], takes the caller's role from its token (the
//! [`Caller`] extractor) and answers what [`execute`] does. A wrong or missing token gets 401
//! and changes nothing; a token that keeps failing, or that asks too often, gets 429 (`auth`).
//! A body over [`BODY_LIMIT`] gets 413 before it is read.

use super::Api;
use super::auth::Caller;
use super::command::{ApiError, Command, execute};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use std::sync::Arc;

const PAGE: &str = include_str!("console.html");

/// The largest request body taken (a submission of 200 orders with a comment fits in a tenth
/// of it); larger ones get 413, over HTTP and gRPC alike.
pub const BODY_LIMIT: usize = 256 * 1024;

pub fn router(api: Arc<Api>) -> axum::Router {
    axum::Router::new()
        .route("/", get(page))
        .route("/api/whoami", get(|s, c| run(s, c, Command::WhoAmI)))
        .route("/api/player", get(|s, c| run(s, c, Command::PlayerView)))
        .route("/api/orders", post(|s, c, b| with_body(s, c, b, ORDERS, Command::Orders)))
        .route("/api/message", post(|s, c, b| with_body(s, c, b, MESSAGE, Command::Message)))
        .route(
            "/api/control",
            get(|s, c| run(s, c, Command::ControlView))
                .post(|s, c, b| with_body(s, c, b, CONTROL, Command::ControlAction)),
        )
        .route("/api/control/inject", post(|s, c, b| with_body(s, c, b, INJECT, Command::Inject)))
        .route("/api/control/note", post(|s, c, b| with_body(s, c, b, NOTE, Command::Note)))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(api)
}

/// What each body should look like, for the 400 that refuses a malformed one.
const ORDERS: &str = "the body must be JSON: {\"orders\": [...], \"comment\": \"...\"}";
const MESSAGE: &str = "the body must be JSON: {\"to\": [\"US\"], \"text\": \"...\"}";
const CONTROL: &str = "the body must be JSON: {\"action\": \"pause\"}";
const INJECT: &str = "the body must be JSON: {\"toml\": \"[[events]] ...\"}";
const NOTE: &str = "the body must be JSON: {\"text\": \"...\", \"bookmark\": false}";

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
            ),
        ],
        PAGE.replace("/*CHARTS*/", super::CHARTS_JS),
    )
        .into_response()
}

async fn run(State(api): State<Arc<Api>>, Caller(role): Caller, command: Command) -> Response {
    match execute(&api, role, command) {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn with_body<T: DeserializeOwned>(
    state: State<Arc<Api>>,
    caller: Caller,
    body: Result<Json<T>, JsonRejection>,
    shape: &'static str,
    command: fn(T) -> Command,
) -> Response {
    match body {
        Ok(Json(body)) => run(state, caller, command(body)).await,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(format!("the body is larger than {} KiB", BODY_LIMIT / 1024)).into_response()
        }
        Err(_) => ApiError::Malformed(shape.into()).into_response(),
    }
}
