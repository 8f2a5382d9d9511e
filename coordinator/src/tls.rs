//! TLS for the coordinator's ports (`--tls-cert`/`--tls-key`): the node port and the exercise's
//! gRPC port through tonic's rustls support, the exercise's HTTP port through an axum
//! `Listener` that completes each handshake (with a time limit) before handing the connection
//! over. rustls with the ring provider only; the certificate and key are PEM files, checked
//! when loaded so a bad pair is refused before anything listens.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key: {detail}")]
    NoKey { path: String, detail: String },
    #[error("the certificate {cert} and the key {key} do not make a TLS identity: {detail}")]
    Mismatch { cert: String, key: String, detail: String },
}

/// A server's certificate chain and private key.
#[derive(Clone)]
pub struct Tls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Tls").field("certificate_bytes", &self.cert_pem.len()).finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Reads and checks a PEM certificate (chain) and its private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|source| TlsError::Read { path: p.display().to_string(), source });
        let (cert_pem, key_pem) = (read(cert)?, read(key)?);
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&cert_pem).filter_map(Result::ok).collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: cert.display().to_string() });
        }
        let private = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::NoKey { path: key.display().to_string(), detail: e.to_string() })?;
        let mismatch = |detail: String| TlsError::Mismatch {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            detail,
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| mismatch(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| mismatch(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { cert_pem, key_pem, config: Arc::new(config) })
    }

    /// The configuration for a tonic server (HTTP/2, with the handshake time limit).
    pub fn grpc(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem))
            .timeout(HANDSHAKE_TIMEOUT)
    }
}

/// Makes rustls's process-wide provider the ring one, for code (tonic's server) that asks
/// rustls for the default. Harmless when already set.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The exercise's HTTP listener: plain TCP, or TLS with every handshake completed (in its own
/// task, within `HANDSHAKE_TIMEOUT`) before axum sees the connection.
pub struct HttpListener {
    local: SocketAddr,
    kind: ListenerKind,
}

enum ListenerKind {
    Plain(TcpListener),
    Tls(tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>),
}

impl HttpListener {
    pub fn new(listener: TcpListener, tls: Option<&Tls>) -> std::io::Result<HttpListener> {
        let local = listener.local_addr()?;
        let Some(tls) = tls else { return Ok(HttpListener { local, kind: ListenerKind::Plain(listener) }) };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let (ready, accepted) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                // The listener closes once nobody takes connections any more.
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = ready.closed() => break,
                };
                let Ok((stream, peer)) = accepted else { continue };
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                });
            }
        });
        Ok(HttpListener { local, kind: ListenerKind::Tls(accepted) })
    }
}

/// A connection accepted by an `HttpListener`.
pub enum HttpIo {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl axum::serve::Listener for HttpListener {
    type Io = HttpIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (HttpIo, SocketAddr) {
        loop {
            match &mut self.kind {
                ListenerKind::Plain(l) => match TcpListener::accept(l).await {
                    Ok((s, peer)) => return (HttpIo::Plain(s), peer),
                    Err(e) => {
                        tracing::debug!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                ListenerKind::Tls(rx) => match rx.recv().await {
                    Some((s, peer)) => return (HttpIo::Tls(Box::new(s)), peer),
                    None => std::future::pending::<()>().await,
                },
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The peer of an HTTP request, as the exercise's handlers see it (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, HttpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, HttpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl AsyncRead for HttpIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            HttpIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            HttpIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for HttpIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            HttpIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            HttpIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            HttpIo::Plain(s) => Pin::new(s).poll_flush(cx),
            HttpIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            HttpIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            HttpIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
