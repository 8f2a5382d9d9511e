//! Who is asking: bearer tokens mapped to a role (a played nation or control), and the limit on
//! failed attempts. Only BLAKE3 hashes of the tokens are kept. An address that keeps failing is
//! refused for the rest of a minute (429). The HTTP front end takes the role through the
//! [`Caller`] extractor; the gRPC one through [`Api::authenticate`] on the call's metadata.

use super::Api;
use super::command::ApiError;
use agents::NationId;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Failed logins from one address within a minute before it is refused for the rest of it.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Player(NationId),
    Control,
}

impl Role {
    /// The played nation, or a refusal for control.
    pub fn player(self) -> Result<NationId, ApiError> {
        match self {
            Role::Player(n) => Ok(n),
            Role::Control => Err(ApiError::Forbidden("this is a player's route; control uses /api/control".into())),
        }
    }

    /// Nothing, or a refusal for a player.
    pub fn control(self) -> Result<(), ApiError> {
        match self {
            Role::Control => Ok(()),
            Role::Player(_) => Err(ApiError::Forbidden("only the control cell may do this".into())),
        }
    }
}

/// How a token is stored: its BLAKE3 hash in hex.
pub fn token_hash(token: &str) -> String {
    blake3::hash(token.trim().as_bytes()).to_hex().to_string()
}

/// A fresh random token: 128 bits from the operating system, in hex.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The bearer token of an `authorization` header, or "".
pub fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

impl Api {
    /// The role of `token` presented from `from`, or the refusal.
    pub fn authenticate(&self, token: &str, from: IpAddr) -> Result<Role, ApiError> {
        {
            let failures = crate::run::lock(&self.failures);
            if let Some((count, since)) = failures.get(&from)
                && *count >= MAX_FAILURES
                && since.elapsed() < FAILURE_WINDOW
            {
                return Err(ApiError::TooManyAttempts("too many failed attempts; wait a minute".into()));
            }
        }
        match self.tokens.get(&token_hash(token)) {
            Some(role) if !token.trim().is_empty() => Ok(*role),
            _ => {
                let mut failures = crate::run::lock(&self.failures);
                let entry = failures.entry(from).or_insert((0, Instant::now()));
                if entry.1.elapsed() >= FAILURE_WINDOW {
                    *entry = (0, Instant::now());
                }
                entry.0 += 1;
                Err(ApiError::Unauthorized("a valid access token is required".into()))
            }
        }
    }
}

/// The role of an HTTP request's bearer token (401, 429 when it has none).
pub struct Caller(pub Role);

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Caller, ApiError> {
        let from = parts
            .extensions
            .get::<ConnectInfo<crate::tls::Peer>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(peer)| peer.0.ip());
        api.authenticate(bearer(&parts.headers), from).map(Caller)
    }
}
