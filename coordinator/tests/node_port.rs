//! The node port is for the run's own nodes, on real processes on loopback: Hellos without the
//! join secret, with a wrong one, or of 100 MB are refused (and the coordinator's memory stays
//! under a stated bound while they are), a message over the run's limit is refused on its
//! header, idle connections are closed after the authentication time limit and the connection
//! limit holds; and TLS: a run over TLS matches the plaintext run, and the exercise serves its
//! console and its gRPC interface over TLS.

use proto::v1;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::served::{Coordinator, assert_same_outputs, hello, open, serve_args, strs};
use common::{fresh_db, scenario, temp_dir, wait_with_timeout};

/// The coordinator's peak resident memory, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The bound this test holds the coordinator of a tiny run to, whatever its peers send.
const PEAK_RSS_BOUND_MIB: u64 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hellos_without_the_secret_with_a_wrong_one_or_of_100_mb_are_refused() {
    let out = temp_dir("port-refusals");
    let coordinator = Coordinator::start(&strs(&serve_args("tiny.toml", 1, &out, &["--ticks", "30"])));
    let url = coordinator.url();
    let before = peak_rss_kib(coordinator.child.id());

    let e = open(&url, hello("nosecret", "")).await.expect_err("a Hello without the secret");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("no join secret"), "{}", e.message());
    let e = open(&url, hello("wrong", "0123456789abcdef0123456789abcdef")).await.expect_err("a wrong secret");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("wrong join secret"), "{}", e.message());
    // A wrong secret is refused before the name is even looked at.
    let e = open(&url, v1::Hello { protocol_version: 99, ..hello("", "bad") }).await.expect_err("bad everything");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");

    // 100 MB in the name: refused on the frame's header, with or without the secret.
    for secret in ["", coordinator.secret.as_str()] {
        let big = v1::Hello { node_name: "x".repeat(100 << 20), ..hello("big", secret) };
        let e = open(&url, big).await.expect_err("a 100 MB Hello");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("a Hello of 104857"), "{}", e.message());
    }
    let peak = peak_rss_kib(coordinator.child.id());
    println!("coordinator peak RSS: {} KiB before the hostile Hellos, {peak} KiB after", before);
    assert!(peak < PEAK_RSS_BOUND_MIB * 1024, "peak RSS {peak} KiB is over {PEAK_RSS_BOUND_MIB} MiB");

    // An authenticated node that then sends more than the run's limit (1 MiB for tiny) is cut off.
    let (tx, mut inbound) = open(&url, hello("greedy", &coordinator.secret)).await.expect("joins");
    let welcome = inbound.message().await.expect("stream").expect("welcome");
    assert!(matches!(welcome.body, Some(v1::coordinator_message::Body::Welcome(_))));
    let huge = v1::AgentActions { agent: 0, memory: vec![v1::Forecast::default(); 1_000_000], ..Default::default() };
    let actions = v1::Actions { tick: 0, actions: vec![huge] };
    let _ = tx.send(v1::NodeMessage { body: Some(v1::node_message::Body::Actions(actions)) }).await;
    let (ok, stderr) = coordinator.finish();
    assert!(!ok, "the run's only node was cut off, so the run stops");
    assert!(stderr.contains("node greedy failed at tick 0"), "{stderr}");
    assert!(stderr.contains("is refused: this run accepts at most"), "{stderr}");
    let _ = std::fs::remove_dir_all(out);
}

/// Reads from a raw connection until the server closes it; returns how long that took.
fn time_to_close(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_the_connection_limit_holds() {
    let out = temp_dir("port-limits");
    let extra = ["--ticks", "20", "--max-connections", "4", "--auth-timeout", "1"];
    let coordinator = Coordinator::start(&strs(&serve_args("tiny.toml", 1, &out, &extra)));
    let addr = format!("127.0.0.1:{}", coordinator.port);
    let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(&addr).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(200));
    let refused = time_to_close(TcpStream::connect(&addr).expect("the kernel accepts"));
    assert!(refused < Duration::from_millis(800), "a fifth connection is closed at once, not after {refused:?}");
    let closed: Vec<Duration> = idle.into_iter().map(time_to_close).collect();
    println!("over the limit: closed after {refused:?}; idle ones after {closed:?} (limit 1 s)");
    assert!(closed.iter().all(|d| *d < Duration::from_secs(5)), "{closed:?}");
    assert!(closed[0] >= Duration::from_millis(600), "an idle connection has its second: {closed:?}");
    // With the idle ones gone, the real node gets a place and the run completes.
    let mut node = coordinator.node("real");
    let (ok, stderr) = coordinator.finish();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("did not authenticate within"), "{stderr}");
    assert!(wait_with_timeout(&mut node, Duration::from_secs(30)));
    let _ = std::fs::remove_dir_all(out);
}

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("cert");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).expect("write cert");
    std::fs::write(&k, signing_key.serialize_pem()).expect("write key");
    (c, k)
}

fn served(file: &str, extra: &[&str], nodes: usize, node_extra: &[&str], out: &Path) {
    let coordinator = Coordinator::start(&strs(&serve_args(file, nodes, out, extra)));
    let mut children: Vec<_> = (0..nodes).map(|i| coordinator.node_with(&format!("n{i}"), node_extra)).collect();
    let (ok, stderr) = coordinator.finish();
    assert!(ok, "{stderr}");
    for c in &mut children {
        assert!(wait_with_timeout(c, Duration::from_secs(30)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_tls_matches_the_plaintext_run() {
    let dir = temp_dir("tls");
    let (cert, key) = self_signed(&dir);
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let plain = dir.join("plain");
    served("baseline-2024.toml", &["--ticks", "60"], 2, &[], &plain);
    let tls = dir.join("tls");
    let flags = ["--ticks", "60", "--tls-cert", &cert_s, "--tls-key", &key_s];
    served("baseline-2024.toml", &flags, 2, &["--tls-ca", &cert_s], &tls);
    assert_same_outputs(&plain, &tls, "the run over TLS");

    // Plaintext is not spoken on a TLS port, and a node must be told what to trust.
    let coordinator = Coordinator::start(&strs(&serve_args("tiny.toml", 1, &dir.join("x"), &flags)));
    assert_eq!(coordinator.scheme, "https");
    let plaintext = format!("http://127.0.0.1:{}", coordinator.port);
    let status = async {
        let mut c = v1::control_client::ControlClient::connect(plaintext).await?;
        Ok::<_, Box<dyn std::error::Error>>(c.status(v1::StatusRequest {}).await?)
    };
    assert!(status.await.is_err(), "a plaintext client gets nothing from a TLS port");
    let untrusting = coordinator.node("untrusting").wait_with_output().expect("node exits");
    assert!(!untrusting.status.success());
    assert!(String::from_utf8_lossy(&untrusting.stderr).contains("--tls-ca"), "{untrusting:?}");
    let mut child = coordinator.child;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}

/// One HTTPS request to `addr` trusting `cert`; returns the response's first line.
async fn https_get(addr: &str, cert: &Path, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).expect("pem") {
        roots.add(c.expect("cert")).expect("root");
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response.lines().next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exercise_serves_its_console_and_grpc_over_tls() {
    use std::io::BufRead;
    let dir = temp_dir("exercise-tls");
    let (cert, key) = self_signed(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_chokepoint"))
        .arg("--db")
        .arg(fresh_db())
        .args(["exercise", &scenario("tiny.toml"), "--players", "AA", "--listen", "127.0.0.1:0"])
        .args(["--grpc-listen", "127.0.0.1:0", "--out", &dir.join("out").display().to_string()])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("exercise");
    let reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let (mut console, mut grpc, mut control) = (String::new(), String::new(), String::new());
    for line in reader.lines().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("Console: https://") {
            console = rest.trim_end_matches('/').to_string();
        } else if let Some(rest) = line.strip_prefix("gRPC: ") {
            grpc = rest.split_whitespace().next().unwrap_or_default().to_string();
        } else if let Some(rest) = line.trim_start().strip_prefix("control ") {
            control = rest.trim().to_string();
            break;
        }
    }
    assert!(!console.is_empty() && !grpc.is_empty() && !control.is_empty(), "the exercise printed its https address");
    let first = https_get(&console, &cert, "/").await.expect("HTTPS");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Plain HTTP on the TLS port gets no page.
    let mut plain = TcpStream::connect(&console).expect("connect");
    use std::io::Write;
    plain.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let _ = plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"), "plain HTTP is not answered");

    let pem = std::fs::read(&cert).expect("cert");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(pem))
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{grpc}"))
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("a TLS gRPC connection");
    let mut client = v1::exercise_client::ExerciseClient::new(channel);
    let mut request = tonic::Request::new(v1::ExerciseEmpty {});
    request.metadata_mut().insert("authorization", format!("Bearer {control}").parse().expect("header"));
    let reply = client.who_am_i(request).await.expect("WhoAmI over TLS").into_inner();
    assert!(reply.json.contains("control"), "{}", reply.json);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}

/// The README's command for a self-signed pair makes one that nodes accept (over `localhost`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the openssl command; .ci/run installs it and runs this with --include-ignored"]
async fn the_readmes_self_signed_pair_serves_a_tls_run() {
    let dir = temp_dir("readme-tls");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README");
    let mut command = String::new();
    for line in readme.lines().skip_while(|l| !l.starts_with("openssl req -x509")) {
        command.push_str(line.trim_end_matches('\\'));
        if !line.ends_with('\\') {
            break;
        }
    }
    assert!(command.contains("-keyout key.pem -out cert.pem"), "the README shows the command: {command}");
    let made = Command::new("sh").arg("-c").arg(&command).current_dir(&dir).output().expect("sh runs");
    assert!(made.status.success(), "{command}: {}", String::from_utf8_lossy(&made.stderr));
    let (cert, key) = (dir.join("cert.pem").display().to_string(), dir.join("key.pem").display().to_string());
    let out = dir.join("out");
    let coordinator =
        Coordinator::start(&strs(&serve_args("tiny.toml", 1, &out, &["--tls-cert", &cert, "--tls-key", &key])));
    let url = format!("https://localhost:{}", coordinator.port);
    let mut node = Command::new(env!("CARGO_BIN_EXE_agent-node"))
        .args(["--coordinator", &url, "--name", "n", "--tls-ca", &cert])
        .env("CHOKEPOINT_NODE_SECRET", &coordinator.secret)
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let (ok, stderr) = coordinator.finish();
    assert!(ok, "{stderr}");
    assert!(wait_with_timeout(&mut node, Duration::from_secs(30)));
    let _ = std::fs::remove_dir_all(dir);
}
