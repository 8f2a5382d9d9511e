//! What players and control can ask of an exercise, as one type both front ends decode into:
//! the HTTP routes from their JSON bodies, the gRPC service from its messages. [`execute`] runs
//! a command for a caller and answers a JSON document or an [`ApiError`], whose kind says what
//! went wrong (each front end maps it to its own status: HTTP codes, gRPC codes).

use super::auth::Role;
use super::{Api, control, orders, views};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One request to the exercise.
#[derive(Debug)]
pub enum Command {
    WhoAmI,
    PlayerView,
    Orders(OrdersBody),
    Message(MessageBody),
    ControlView,
    ControlAction(ControlBody),
    Inject(InjectBody),
    Note(NoteBody),
}

/// A player's sealed orders for the coming turn. Orders stay JSON values until validation, so
/// each bad field is reported at its own order.
#[derive(Debug, Default, Deserialize)]
pub struct OrdersBody {
    #[serde(default)]
    pub orders: Vec<Value>,
    #[serde(default)]
    pub comment: String,
    /// An empty submission withdraws a sealed one only when this says so.
    #[serde(default)]
    pub replace: bool,
}

#[derive(Debug, Deserialize)]
pub struct MessageBody {
    pub to: Vec<String>,
    pub text: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ControlBody {
    pub action: String,
    #[serde(default)]
    pub ticks: Option<u32>,
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub mode: Option<String>,
    /// For `deadline`: "turn" (this turn only) or "all" (every turn from now; the default).
    #[serde(default)]
    pub scope: Option<String>,
    /// For `rollback`: the turn to return to the start of.
    #[serde(default)]
    pub turn: Option<u32>,
    /// For `adjust` and `refuse`: whose order (a nation's code), which (1-based), the order
    /// that replaces it (`adjust`), and the note the player sees.
    #[serde(default)]
    pub nation: Option<String>,
    #[serde(default)]
    pub order: Option<u32>,
    #[serde(default)]
    pub replacement: Option<Value>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct InjectBody {
    /// One or more `[[events]]` tables in the scenario format.
    pub toml: String,
    /// The inject's name, for tables that have none (the first keeps it, later ones get
    /// `-2`, `-3`...). Names must differ from every event's so far.
    #[serde(default)]
    pub name: Option<String>,
    /// "now" (the default), a tick, or a condition.
    #[serde(default)]
    pub at_tick: Option<u32>,
    #[serde(default)]
    pub when_price: Option<WhenPrice>,
}

#[derive(Debug, Deserialize)]
pub struct WhenPrice {
    pub commodity: String,
    #[serde(default)]
    pub stage: Option<String>,
    /// e.g. 2.0: when the price doubles.
    pub ratio: f64,
}

#[derive(Debug, Deserialize)]
pub struct NoteBody {
    pub text: String,
    #[serde(default)]
    pub bookmark: bool,
}

/// One order's field that failed validation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    pub index: usize,
    pub field: String,
    pub message: String,
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiError {
    /// No valid token.
    Unauthorized(String),
    /// A valid token for the wrong role.
    Forbidden(String),
    /// Too many failed attempts from this address.
    TooManyAttempts(String),
    /// The body could not be read as the command.
    Malformed(String),
    /// The exercise is over.
    Ended(String),
    /// More than a submission may hold.
    TooLarge(String),
    /// A value out of range or pointing at nothing.
    Invalid(String),
    /// Orders with field errors (the whole submission is refused).
    Fields(Vec<FieldError>),
}

impl ApiError {
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::TooManyAttempts(m)
            | ApiError::Malformed(m)
            | ApiError::Ended(m)
            | ApiError::TooLarge(m)
            | ApiError::Invalid(m) => m.clone(),
            ApiError::Fields(errors) => json!({ "errors": errors }).to_string(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::Ended(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) | ApiError::Fields(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self {
            ApiError::Fields(errors) => json!({ "errors": errors }),
            other => json!({ "error": other.message() }),
        };
        (self.status(), Json(body)).into_response()
    }
}

/// Runs `command` for a caller in `role`.
pub fn execute(api: &Api, role: Role, command: Command) -> Result<Value, ApiError> {
    match command {
        Command::WhoAmI => Ok(views::whoami(api, role)),
        Command::PlayerView => views::player(api, role.player()?),
        Command::Orders(body) => orders::submit(api, role.player()?, body),
        Command::Message(body) => orders::message(api, role.player()?, body),
        Command::ControlView => {
            role.control()?;
            Ok(views::control(api))
        }
        Command::ControlAction(body) => {
            role.control()?;
            control::action(api, body)
        }
        Command::Inject(body) => {
            role.control()?;
            control::inject(api, body)
        }
        Command::Note(body) => {
            role.control()?;
            control::note(api, body)
        }
    }
}
