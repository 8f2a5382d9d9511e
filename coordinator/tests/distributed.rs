//! The distributed run with real processes on loopback: a `chokepoint serve` coordinator and
//! `agent-node` processes. Its digests and CSV files are byte-identical to the embedded `run` at
//! any node count and placement; under `--on-node-loss stop` a killed node stops the run with a
//! named, non-zero failure; and hostile or malformed peers get the right status, or have their
//! bad actions refused while the run goes on. Recovery from lost nodes is in recovery.rs, the
//! node port's defences and TLS in node_port.rs.

use proto::v1::{self, coordinator_message, node_message};
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

mod common;
use common::served::{Coordinator, assert_same_outputs, embedded, hello, open};
use common::{scenario, temp_dir, wait_with_timeout};

fn distributed(file: &str, extra: &[&str], nodes: usize, placement: &str, out: &Path) {
    let n = nodes.to_string();
    let out_s = out.display().to_string();
    let mut args = vec![scenario(file)];
    args.extend(["--nodes", &n, "--placement", placement, "--out", &out_s].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let coordinator = Coordinator::start(&args);
    // Names in reverse so that join order and name order differ.
    let mut children: Vec<Child> = (0..nodes).rev().map(|i| coordinator.node(&format!("node-{i}"))).collect();
    let (ok, stderr) = coordinator.finish();
    assert!(ok, "distributed run with {nodes} nodes ({placement}) failed:\n{stderr}");
    for c in &mut children {
        assert!(wait_with_timeout(c, Duration::from_secs(30)), "an agent node exited with failure");
    }
}

#[test]
fn one_two_and_four_nodes_give_the_embedded_run_bit_for_bit() {
    let reference = temp_dir("embedded");
    embedded("tiny.toml", &[], &reference);
    for (nodes, placement) in [(1, "round-robin"), (2, "round-robin"), (2, "blocks"), (4, "blocks"), (4, "round-robin")]
    {
        let out = temp_dir(&format!("n{nodes}-{placement}"));
        distributed("tiny.toml", &[], nodes, placement, &out);
        assert_same_outputs(&reference, &out, &format!("{nodes} nodes ({placement})"));
        let _ = std::fs::remove_dir_all(out);
    }
    let _ = std::fs::remove_dir_all(reference);
}

#[test]
fn the_baseline_on_two_nodes_matches_the_embedded_run() {
    let reference = temp_dir("baseline-embedded");
    embedded("baseline-2024.toml", &["--ticks", "40"], &reference);
    let out = temp_dir("baseline-2");
    distributed("baseline-2024.toml", &["--ticks", "40"], 2, "blocks", &out);
    assert_same_outputs(&reference, &out, "2 nodes");
    let _ = std::fs::remove_dir_all(reference);
    let _ = std::fs::remove_dir_all(out);
}

/// The geopolitical mechanics cross the wire too: announcements with supply shares, hoarding
/// refiners, capacity and goods in transit in the observations.
#[test]
fn a_historical_episode_on_three_nodes_matches_the_embedded_run() {
    for file in ["cobalt-halt-2025.toml", "graphite-licensing-2023.toml"] {
        let reference = temp_dir("history-embedded");
        embedded(file, &["--ticks", "60"], &reference);
        let out = temp_dir("history-3");
        distributed(file, &["--ticks", "60"], 3, "round-robin", &out);
        assert_same_outputs(&reference, &out, &format!("{file} on 3 nodes"));
        let _ = std::fs::remove_dir_all(reference);
        let _ = std::fs::remove_dir_all(out);
    }
}

/// `--on-node-loss stop` keeps the behaviour of a run that cannot lose a node.
#[test]
fn a_killed_node_stops_the_run_with_a_named_failure_under_on_node_loss_stop() {
    let out = temp_dir("killed");
    let out_s = out.display().to_string();
    let coordinator = Coordinator::start(&[
        &scenario("baseline-2024.toml"),
        "--nodes",
        "2",
        "--ticks",
        "100000",
        "--on-node-loss",
        "stop",
        "--out",
        &out_s,
    ]);
    let mut survivor = coordinator.node("survivor");
    let mut victim = coordinator.node("victim");
    coordinator.wait_for_log("starts");
    std::thread::sleep(Duration::from_millis(500));
    victim.kill().expect("kill the node");
    let _ = victim.wait();
    let (ok, stderr) = coordinator.finish();
    assert!(!ok, "the coordinator must exit non-zero when a node dies");
    assert!(stderr.contains("node victim failed at tick"), "the failure names the node and tick:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Everything written for the completed ticks is intact: a header and whole rows.
    let digests = std::fs::read_to_string(out.join("digests.csv")).expect("digests.csv survives");
    let rows: Vec<&str> = digests.lines().collect();
    assert!(rows.len() > 2, "some ticks completed before the kill");
    assert!(
        rows[1..]
            .iter()
            .enumerate()
            .all(|(i, r)| r.starts_with(&format!("{i},")) && r.len() == format!("{i},").len() + 64)
    );
    assert!(!wait_with_timeout(&mut survivor, Duration::from_secs(30)), "the surviving node reports the failed run");
    let _ = std::fs::remove_dir_all(out);
}

// ----------------------------------------------------------------------------------------------
// Hostile peers, speaking gRPC from this test process.

fn hello_v(name: &str, secret: &str, version: u32, run: &str) -> v1::Hello {
    v1::Hello { protocol_version: version, run_id: run.into(), ..hello(name, secret) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_version_wrong_run_duplicate_and_late_nodes_are_refused() {
    let out = temp_dir("refusals");
    let out_s = out.display().to_string();
    let coordinator = Coordinator::start(&[
        &scenario("tiny.toml"),
        "--nodes",
        "1",
        "--ticks",
        "100000",
        "--tick-deadline",
        "3",
        "--out",
        &out_s,
    ]);
    let url = coordinator.url();
    let secret = coordinator.secret.clone();

    let e = open(&url, hello_v("old", &secret, 99, "")).await.expect_err("version 99 is refused");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("protocol version 99"), "{}", e.message());

    let e = open(&url, hello_v("lost", &secret, proto::PROTOCOL_VERSION, "some-other-run"))
        .await
        .expect_err("wrong run is refused");
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(e.message().contains("some-other-run"), "{}", e.message());

    // A first node joins (and, being the only one expected, starts the run) ...
    let (_tx, mut first) = open(&url, hello("twin", &secret)).await.expect("first node joins");
    let welcome = first.message().await.expect("stream").expect("a message");
    assert!(matches!(welcome.body, Some(coordinator_message::Body::Welcome(_))));
    // ... so the same name again, or any late node, is refused.
    let e = open(&url, hello("twin", &secret)).await.expect_err("a duplicate is refused");
    assert!(matches!(e.code(), tonic::Code::FailedPrecondition | tonic::Code::AlreadyExists), "{e:?}");
    let e = open(&url, hello("latecomer", &secret)).await.expect_err("a late node is refused");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("already started"), "{}", e.message());

    drop(first);
    let (ok, _) = coordinator.finish();
    assert!(!ok, "the run fails once its only node goes away");
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_name_is_refused_while_waiting() {
    let coordinator = Coordinator::start(&[
        &scenario("tiny.toml"),
        "--nodes",
        "2",
        "--join-timeout",
        "20",
        "--out",
        &temp_dir("dup").display().to_string(),
    ]);
    let url = coordinator.url();
    let (_tx, _first) = open(&url, hello("same", &coordinator.secret)).await.expect("first joins");
    let e = open(&url, hello("same", &coordinator.secret)).await.expect_err("duplicate refused");
    assert_eq!(e.code(), tonic::Code::AlreadyExists);
    assert!(e.message().contains("same"), "{}", e.message());
    let mut child = coordinator.child;
    let _ = child.kill();
    let _ = child.wait();
}

/// A node that answers honestly except at tick 3, where it adds an action for an agent it does
/// not run, a negative quantity, an order in a commodity that does not exist and a price beyond
/// the market's bounds. The run completes; each bad action is refused with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_actions_are_refused_and_the_run_goes_on() {
    let out = temp_dir("hostile");
    let out_s = out.display().to_string();
    let coordinator = Coordinator::start(&[&scenario("tiny.toml"), "--nodes", "1", "--ticks", "6", "--out", &out_s]);
    let (tx, mut inbound) = open(&coordinator.url(), hello("hostile", &coordinator.secret)).await.expect("joins");
    let mut host: Option<agent_node::LocalHost> = None;
    loop {
        let message = inbound.message().await.expect("stream").expect("message");
        match message.body.expect("body") {
            coordinator_message::Body::Welcome(w) => {
                let specs = w
                    .agents
                    .into_iter()
                    .map(|a| (agents::AgentId(a.agent), agents::AgentSpec::try_from(a.spec.unwrap()).unwrap()));
                host = Some(agent_node::LocalHost::new("hostile", specs));
            }
            coordinator_message::Body::Observations(o) => {
                let batch = agents::ObservationBatch::try_from(o).expect("valid observations");
                let tick = batch.tick;
                let actions = host.as_mut().unwrap().run(batch).unwrap();
                let mut wire: Vec<v1::AgentActions> = actions.actions.iter().map(Into::into).collect();
                if tick.0 == 3 {
                    // Agent 0 sends a negative quantity (a malformed message: refused at the edge).
                    let mut bad = wire[0].clone();
                    bad.orders.push(v1::Order {
                        market: Some(v1::MarketId { commodity: 0, stage: 1 }),
                        side: 0,
                        quantity_kg: -5,
                        limit_cents_per_kg: 100,
                        domestic_only: false,
                    });
                    wire[0] = bad;
                    // Agent 1 orders in commodity 99 and at a price beyond the bounds (refused by validation).
                    wire[1].orders.push(v1::Order {
                        market: Some(v1::MarketId { commodity: 99, stage: 1 }),
                        side: 0,
                        quantity_kg: 5,
                        limit_cents_per_kg: 100,
                        domestic_only: false,
                    });
                    wire[1].orders.push(v1::Order {
                        market: Some(v1::MarketId { commodity: 0, stage: 1 }),
                        side: 0,
                        quantity_kg: 5,
                        limit_cents_per_kg: 999_999_999,
                        domestic_only: false,
                    });
                    // An action for an agent that does not exist on this node.
                    let mut foreign = wire[2].clone();
                    foreign.agent = 10_000;
                    wire.push(foreign);
                }
                let reply = v1::Actions { tick: tick.0, actions: wire };
                tx.send(v1::NodeMessage { body: Some(node_message::Body::Actions(reply)) }).await.expect("send");
            }
            coordinator_message::Body::Assign(_) => panic!("the only node is never assigned more agents"),
            coordinator_message::Body::Finish(f) => {
                let log: Vec<String> = coordinator.stderr.try_iter().collect();
                assert!(f.ok, "the run completes despite the bad actions: {}\n{}", f.reason, log.join("\n"));
                break;
            }
        }
    }
    let (ok, stderr) = coordinator.finish();
    assert!(ok, "{stderr}");
    let rejections = std::fs::read_to_string(out.join("rejections.csv")).expect("rejections.csv");
    assert!(rejections.contains("malformed action: field `order.quantity_kg` is out of range (-5)"), "{rejections}");
    assert!(rejections.contains("unknown commodity #99"), "{rejections}");
    assert!(rejections.contains("outside the market's bounds"), "{rejections}");
    assert!(rejections.contains("agent#10000, which this node does not run"), "{rejections}");
    assert!(rejections.lines().skip(1).all(|l| l.starts_with("3,")), "only tick 3 was hostile:\n{rejections}");
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_status_and_markets_are_served() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let out = temp_dir("services");
    let coordinator = Coordinator::start(&[
        &scenario("tiny.toml"),
        "--nodes",
        "1",
        "--join-timeout",
        "30",
        "--out",
        &out.display().to_string(),
    ]);
    let url = coordinator.url();
    let channel = tonic::transport::Endpoint::from_shared(url.clone()).expect("url").connect().await.expect("connect");

    let mut health = HealthClient::new(channel.clone());
    for service in ["chokepoint.v1.AgentNodes", "chokepoint.v1.Control", "chokepoint.v1.Player"] {
        let reply =
            health.check(tonic_health::pb::HealthCheckRequest { service: service.into() }).await.expect("health check");
        assert_eq!(
            reply.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies =
        reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.expect("reflection").into_inner();
    let reply = replies.message().await.expect("stream").expect("a reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("not a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in
        ["chokepoint.v1.AgentNodes", "chokepoint.v1.Control", "chokepoint.v1.Player", "grpc.health.v1.Health"]
    {
        assert!(names.iter().any(|n| n == service), "{service} missing from {names:?}");
    }

    let mut control = proto::v1::control_client::ControlClient::connect(url.clone()).await.expect("connect");
    let status = control.status(v1::StatusRequest {}).await.expect("status").into_inner();
    assert_eq!(status.state, "waiting for nodes");
    assert_eq!(status.scenario, "tiny");
    assert_eq!(status.seed, 7);
    assert_eq!(status.run_id, "1", "the run is the first in its fresh database");
    let mut player = proto::v1::player_client::PlayerClient::connect(url.clone()).await.expect("connect");
    let markets = player.markets(v1::MarketsRequest {}).await.expect("markets").into_inner();
    assert!(markets.markets.is_empty(), "no prices before the first tick");

    let mut child = coordinator.child;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn ctrl_c_stops_the_coordinator_and_its_nodes_cleanly() {
    let out = temp_dir("sigint");
    let out_s = out.display().to_string();
    let coordinator =
        Coordinator::start(&[&scenario("baseline-2024.toml"), "--nodes", "1", "--ticks", "100000", "--out", &out_s]);
    let mut node = coordinator.node("only");
    coordinator.wait_for_log("starts");
    std::thread::sleep(Duration::from_millis(300));
    let pid = coordinator.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().expect("kill runs").success());
    let mut child = coordinator.child;
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the coordinator ignored Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "interrupted runs exit with 130");
    let digests = std::fs::read_to_string(out.join("digests.csv")).expect("outputs flushed");
    assert!(digests.lines().count() > 2);
    assert!(!wait_with_timeout(&mut node, Duration::from_secs(30)), "the node reports that the run did not complete");
    let _ = std::fs::remove_dir_all(out);
}
