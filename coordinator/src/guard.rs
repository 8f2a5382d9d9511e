//! The node port's defences, for a port that only the run's own nodes may use: the join secret
//! a node presents in its Hello, a limit on live connections with a time limit for a connection
//! to authenticate (a TLS handshake, a Hello with the secret, or a control call carrying it), and
//! per-message size limits on what nodes send, checked on the gRPC frame headers as the bytes
//! arrive, so an oversized message is refused before it is buffered.
//!
//! Nothing here knows about runs or agents beyond the scenario's size; `serve` wires it in.

use engine::Scenario;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::codegen::{Bytes, Service, http};

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("cannot read the join secret from {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the join secret in {path} is {len} characters long; it must be 16 to 512 printable characters")]
    Weak { path: String, len: usize },
    #[error("cannot make a join secret: {0}")]
    Random(std::io::Error),
}

/// The run's join secret, kept only as its BLAKE3 hash (whose comparison takes the same time
/// however many bytes match).
#[derive(Clone)]
pub struct JoinSecret {
    hash: blake3::Hash,
}

/// What a presented secret is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presented {
    Missing,
    Wrong,
    Right,
}

impl JoinSecret {
    pub fn new(secret: &str) -> JoinSecret {
        JoinSecret { hash: blake3::hash(secret.as_bytes()) }
    }

    /// A fresh secret: 128 random bits from the operating system, in hex.
    pub fn generate() -> Result<String, GuardError> {
        crate::exercise::new_token().map_err(GuardError::Random)
    }

    /// The secret in `path` (surrounding white space ignored), refused when it is too short to
    /// resist guessing or holds something other than printable ASCII.
    pub fn read(path: &Path) -> Result<String, GuardError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GuardError::Read { path: shown.clone(), source })?;
        let secret = text.trim();
        let printable = secret.bytes().all(|b| b.is_ascii_graphic());
        if !(16..=512).contains(&secret.len()) || !printable {
            return Err(GuardError::Weak { path: shown, len: secret.len() });
        }
        Ok(secret.to_string())
    }

    pub fn check(&self, presented: &str) -> Presented {
        if presented.is_empty() {
            Presented::Missing
        } else if blake3::hash(presented.as_bytes()) == self.hash {
            Presented::Right
        } else {
            Presented::Wrong
        }
    }
}

/// The largest messages a node may send: the Hello that opens a session, and any message after
/// it (Actions, the largest, bound the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    pub hello: usize,
    pub rest: usize,
}

/// A Hello holds a name of at most 200 characters, a run id and a secret of at most 512.
pub const HELLO_MAX_BYTES: usize = 4 * 1024;

/// The largest Actions message a node can legitimately send for `scenario`: every agent on one
/// node, each with a forecast and up to two orders in every market and a consumption per
/// commodity.
pub fn actions_bound(scenario: &Scenario) -> usize {
    let markets = 2 * scenario.commodities.len();
    let per_agent = 64 + 96 * markets + 16 * scenario.commodities.len();
    4096 + scenario.agents.len().saturating_mul(per_agent)
}

/// A Hello of at most `HELLO_MAX_BYTES`, then messages of at most twice `actions_bound` (and
/// at least 1 MiB).
pub fn node_limits(scenario: &Scenario) -> FrameLimits {
    FrameLimits { hello: HELLO_MAX_BYTES, rest: actions_bound(scenario).saturating_mul(2).max(1 << 20) }
}

/// A connection's standing: whether it has authenticated.
#[derive(Debug, Default)]
pub struct ConnState {
    authenticated: AtomicBool,
}

impl ConnState {
    pub fn authenticate(&self) {
        self.authenticated.store(true, Ordering::Relaxed);
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Relaxed)
    }
}

/// What a request learns of its connection (tonic puts it in the request's extensions).
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub remote: Option<SocketAddr>,
    pub state: Arc<ConnState>,
}

/// The connection state of a request, over TLS or not.
pub fn conn_state<T>(request: &tonic::Request<T>) -> Option<Arc<ConnState>> {
    let ext = request.extensions();
    ext.get::<ConnInfo>()
        .map(|c| c.state.clone())
        .or_else(|| ext.get::<tonic::transport::server::TlsConnectInfo<ConnInfo>>().map(|t| t.get_ref().state.clone()))
}

/// Counts live connections and refuses those beyond the limit.
#[derive(Clone)]
pub struct ConnLimit {
    live: Arc<AtomicUsize>,
    max: usize,
    auth_timeout: Duration,
    /// Connections refused or closed so far, so that a flood of them is logged sparingly.
    turned_away: Arc<AtomicUsize>,
}

/// Whether the `n`th connection turned away (from 1) is logged: the 1st, 2nd, 4th, 8th, ...
fn worth_logging(counter: &AtomicUsize) -> Option<usize> {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    n.is_power_of_two().then_some(n)
}

/// Holds one place under the limit until the connection closes.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::ops::Deref for Place {
    type Target = AtomicUsize;
    fn deref(&self) -> &AtomicUsize {
        &self.0
    }
}

impl ConnLimit {
    pub fn new(max: usize, auth_timeout: Duration) -> ConnLimit {
        ConnLimit {
            live: Arc::new(AtomicUsize::new(0)),
            max: max.max(1),
            auth_timeout,
            turned_away: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Admits an accepted connection, or closes it at once when the limit is reached.
    pub fn admit(&self, stream: TcpStream) -> Option<Guarded> {
        let place = Place(self.live.clone());
        if place.fetch_add(1, Ordering::Relaxed) >= self.max {
            if let Some(n) = worth_logging(&self.turned_away) {
                let from = stream.peer_addr().map_or_else(|_| "a peer".to_string(), |a| a.to_string());
                tracing::warn!("refused a connection from {from}: {} are open ({n} turned away so far)", self.max);
            }
            return None;
        }
        // Ticks are small request/response exchanges: send each at once (no Nagle).
        let _ = stream.set_nodelay(true);
        let info = ConnInfo { remote: stream.peer_addr().ok(), state: Arc::new(ConnState::default()) };
        let deadline = Box::pin(tokio::time::sleep(self.auth_timeout));
        let turned_away = self.turned_away.clone();
        Some(Guarded { inner: stream, info, deadline, timeout: self.auth_timeout, turned_away, _place: place })
    }
}

/// A connection under the limit: reading from it fails once the authentication time limit has
/// passed without it authenticating, which closes it.
pub struct Guarded {
    inner: TcpStream,
    info: ConnInfo,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    turned_away: Arc<AtomicUsize>,
    _place: Place,
}

impl Guarded {
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        if self.info.state.is_authenticated() || self.deadline.as_mut().poll(cx).is_pending() {
            return None;
        }
        if let Some(n) = worth_logging(&self.turned_away) {
            let who = self.info.remote.map_or_else(|| "a peer".to_string(), |a| a.to_string());
            let limit = self.timeout;
            tracing::warn!(
                "closed the connection of {who}: it did not authenticate within {limit:?} ({n} turned away so far)"
            );
        }
        Some(std::io::Error::new(std::io::ErrorKind::TimedOut, "not authenticated in time"))
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Guarded {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

/// A gRPC service whose request bodies are checked against `FrameLimits`.
#[derive(Clone)]
pub struct Limited<S> {
    inner: S,
    limits: FrameLimits,
}

impl<S> Limited<S> {
    pub fn new(inner: S, limits: FrameLimits) -> Limited<S> {
        Limited { inner, limits }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Limited<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<tonic::body::Body>> for Limited<S>
where
    S: Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let limits = self.limits;
        self.inner.call(request.map(|body| tonic::body::Body::new(LimitedBody::new(body, limits))))
    }
}

/// A request body read through: it follows the gRPC frames (a flag byte and a big-endian length
/// before each message) and fails as soon as a header announces a message over its limit.
struct LimitedBody {
    inner: tonic::body::Body,
    limits: FrameLimits,
    /// Messages whose header has been read.
    messages: usize,
    header: [u8; 5],
    header_len: usize,
    /// Bytes of the current message still to come.
    remaining: usize,
}

impl LimitedBody {
    fn new(inner: tonic::body::Body, limits: FrameLimits) -> LimitedBody {
        LimitedBody { inner, limits, messages: 0, header: [0; 5], header_len: 0, remaining: 0 }
    }

    /// Follows the frames through `data`; the first message over its limit is an error.
    fn check(&mut self, mut data: &[u8]) -> Result<(), tonic::Status> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len < 5 {
                break;
            }
            let len = u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]) as usize;
            let (limit, what) =
                if self.messages == 0 { (self.limits.hello, "a Hello") } else { (self.limits.rest, "a message") };
            if len > limit {
                return Err(tonic::Status::resource_exhausted(format!(
                    "{what} of {len} bytes is refused: this run accepts at most {limit} bytes"
                )));
            }
            self.messages += 1;
            self.header_len = 0;
            self.remaining = len;
        }
        Ok(())
    }
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let data = data.clone();
            self.check(&data)?;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut f = vec![0u8];
        f.extend_from_slice(&len.to_be_bytes());
        f.extend(std::iter::repeat_n(7u8, len as usize));
        f
    }

    #[test]
    fn frames_are_followed_across_chunks_and_an_oversized_one_is_refused_by_its_header() {
        let limits = FrameLimits { hello: 10, rest: 100 };
        let mut body = LimitedBody::new(tonic::body::Body::empty(), limits);
        let mut stream = frame(10);
        stream.extend(frame(100));
        stream.extend(frame(3));
        // Any chunking gives the same verdict.
        for chunk in stream.chunks(3) {
            body.check(chunk).expect("within the limits");
        }
        assert_eq!(body.messages, 3);
        let mut body = LimitedBody::new(tonic::body::Body::empty(), limits);
        let e = body.check(&frame(11)[..5]).expect_err("a Hello over 10 bytes");
        assert!(e.message().contains("a Hello of 11 bytes"), "{}", e.message());
        let mut body = LimitedBody::new(tonic::body::Body::empty(), limits);
        body.check(&frame(1)).expect("a small Hello");
        // Only the header of the large message is needed to refuse it.
        let e = body.check(&[0, 0, 0, 0, 101]).expect_err("a message over 100 bytes");
        assert!(e.message().contains("101 bytes"), "{}", e.message());
    }

    #[test]
    fn a_secret_is_checked_by_hash_and_a_weak_file_is_refused() {
        let s = JoinSecret::new("0123456789abcdef0123");
        assert_eq!(s.check(""), Presented::Missing);
        assert_eq!(s.check("0123456789abcdef0124"), Presented::Wrong);
        assert_eq!(s.check("0123456789abcdef0123"), Presented::Right);
        let dir = std::env::temp_dir().join(format!("chokepoint-guard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let weak = dir.join("weak");
        std::fs::write(&weak, "short\n").expect("write");
        assert!(matches!(JoinSecret::read(&weak), Err(GuardError::Weak { len: 5, .. })));
        let good = dir.join("good");
        std::fs::write(&good, "  0123456789abcdef0123\n").expect("write");
        assert_eq!(JoinSecret::read(&good).expect("read"), "0123456789abcdef0123");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Every Actions message of whole runs (every agent on one node, the worst case) stays
    /// within the bound, so the limit is at least twice every legitimate message.
    #[test]
    fn real_actions_stay_within_the_bound_and_half_the_limit() {
        use prost::Message;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        for (file, ticks) in [("baseline-2024.toml", 520), ("cobalt-halt-2025.toml", 60), ("tiny.toml", 100)] {
            let mut scenario = crate::scenario_file::load(&root.join(file)).expect("scenario");
            scenario.ticks = scenario.ticks.min(ticks);
            let scenario = Arc::new(scenario);
            let bound = actions_bound(&scenario);
            let mut engine = engine::Engine::new(scenario.clone());
            let mut host = agent_node::LocalHost::shared("all", scenario.clone());
            let mut largest = 0;
            while !engine.is_finished() {
                let batch = engine.begin_tick().expect("begin");
                let actions = host.run(batch).expect("decide").actions;
                let wire = proto::v1::Actions { tick: 0, actions: actions.iter().map(Into::into).collect() };
                largest = largest.max(wire.encoded_len());
                engine.finish_tick(engine::TickActions { actions, rejections: Vec::new() }).expect("tick");
            }
            assert!(largest <= bound, "{file}: an Actions message of {largest} bytes against a bound of {bound}");
            assert!(node_limits(&scenario).rest >= 2 * largest);
        }
    }
}
