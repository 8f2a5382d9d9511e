//! Who is asking: bearer tokens mapped to a role (a played nation or control), and the limits
//! that keep one client's mistakes from locking out the others. Only BLAKE3 hashes of the
//! tokens are kept. Limits are per token, never per address (a team behind one office network
//! or proxy shares an address):
//!
//! * a valid token may make [`TOKEN_BURST`] requests at once and [`TOKEN_RATE_PER_S`] a second
//!   after that; beyond it that token alone gets 429;
//! * a wrong token (a stale tab, a typo) is refused with 401 up to [`FAILED_TOKEN_MAX`] times a
//!   minute, then with 429 for the rest of the minute: that token alone;
//! * all wrong tokens together may fail [`GLOBAL_FAILURES_MAX`] times a minute; beyond that, for
//!   the rest of the minute, only tokens that have already logged in are let in (a guesser
//!   cannot get in, the players already at work carry on).
//!
//! The HTTP front end takes the role through the [`Caller`] extractor; the gRPC one through
//! [`Api::authenticate`] on the call's metadata.

use super::Api;
use super::command::ApiError;
use agents::NationId;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const TOKEN_BURST: f64 = 120.0;
pub const TOKEN_RATE_PER_S: f64 = 20.0;
pub const FAILED_TOKEN_MAX: u32 = 10;
pub const GLOBAL_FAILURES_MAX: u32 = 300;
const WINDOW: Duration = Duration::from_secs(60);
/// Wrong tokens remembered at most (older ones are forgotten first).
const FAILED_REMEMBERED: usize = 4_096;

/// Request budgets of valid tokens, failures of wrong ones, and the global count, all by token
/// hash.
#[derive(Default)]
pub struct Limits {
    budgets: BTreeMap<String, (f64, Instant)>,
    failed: BTreeMap<String, (u32, Instant)>,
    global: Option<(u32, Instant)>,
    logged_in: BTreeSet<String>,
}

impl Limits {
    /// Whether the global count of failures is over its cap this minute.
    fn locked(&mut self) -> bool {
        match self.global {
            Some((_, since)) if since.elapsed() >= WINDOW => {
                self.global = None;
                false
            }
            Some((count, _)) => count >= GLOBAL_FAILURES_MAX,
            None => false,
        }
    }

    /// A valid token's request: within its budget, or 429.
    fn spend(&mut self, hash: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let (left, at) = self.budgets.entry(hash.to_string()).or_insert((TOKEN_BURST, now));
        *left = (*left + at.elapsed().as_secs_f64() * TOKEN_RATE_PER_S).min(TOKEN_BURST);
        *at = now;
        if *left < 1.0 {
            return Err(ApiError::TooManyAttempts("too many requests with this token; slow down".into()));
        }
        *left -= 1.0;
        self.logged_in.insert(hash.to_string());
        Ok(())
    }

    /// A wrong token: 401 while it has failures left this minute, then 429.
    fn fail(&mut self, hash: &str) -> ApiError {
        let now = Instant::now();
        if let Some((count, since)) = self.failed.get_mut(hash) {
            if since.elapsed() >= WINDOW {
                *count = 0;
                *since = now;
            }
            if *count >= FAILED_TOKEN_MAX {
                return ApiError::TooManyAttempts(
                    "this token failed too often; check it and wait a minute (other tokens are not affected)".into(),
                );
            }
            *count += 1;
        } else {
            if self.failed.len() >= FAILED_REMEMBERED {
                let oldest = self.failed.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.failed.remove(&k);
                }
            }
            self.failed.insert(hash.to_string(), (1, now));
        }
        let global = self.global.get_or_insert((0, now));
        global.0 += 1;
        ApiError::Unauthorized("a valid access token is required".into())
    }
}

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
    /// The role of `token`, or the refusal (see the module's limits).
    pub fn authenticate(&self, token: &str) -> Result<Role, ApiError> {
        let hash = token_hash(token);
        let role = self.tokens.get(&hash).filter(|_| !token.trim().is_empty()).copied();
        let mut limits = crate::run::lock(&self.limits);
        let locked = limits.locked();
        match role {
            Some(role) if !locked || limits.logged_in.contains(&hash) => limits.spend(&hash).map(|()| role),
            Some(_) => Err(ApiError::TooManyAttempts(
                "too many failed logins on this exercise; new logins wait a minute (players already in carry on)"
                    .into(),
            )),
            None if locked => {
                Err(ApiError::TooManyAttempts("too many failed logins on this exercise; wait a minute".into()))
            }
            None => Err(limits.fail(&hash)),
        }
    }
}

/// The role of an HTTP request's bearer token (401, 429 when it has none).
pub struct Caller(pub Role);

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Caller, ApiError> {
        api.authenticate(bearer(&parts.headers)).map(Caller)
    }
}
