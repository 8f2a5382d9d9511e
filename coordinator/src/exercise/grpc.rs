//! The exercise over gRPC (`chokepoint.v1.Exercise`), for scripted players and bots. Each call
//! is handed to the same handler as its HTTP route, with the token taken from the
//! `authorization` metadata and the peer's address for rate limiting, so the two interfaces
//! cannot disagree; the HTTP status becomes the matching gRPC code.

use super::api::{self, Api};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use proto::v1 as w;
use proto::v1::exercise_server::Exercise;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::{Request, Status};

pub struct ExerciseService(pub Arc<Api>);

/// The token and peer of a call, as the HTTP handlers take them.
fn edge<T>(request: &Request<T>) -> (HeaderMap, SocketAddr) {
    let mut headers = HeaderMap::new();
    if let Some(v) = request.metadata().get("authorization").and_then(|v| v.to_str().ok())
        && let Ok(v) = HeaderValue::from_str(v)
    {
        headers.insert(header::AUTHORIZATION, v);
    }
    let peer = request.remote_addr().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    (headers, peer)
}

/// An HTTP answer as a gRPC one.
async fn reply(response: Response) -> Result<tonic::Response<w::JsonReply>, Status> {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .map_err(|e| Status::internal(format!("reading the answer: {e}")))?;
    let json = String::from_utf8_lossy(&bytes).into_owned();
    let message = || {
        serde_json::from_str::<Value>(&json)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| json.clone())
    };
    match status {
        StatusCode::OK => Ok(tonic::Response::new(w::JsonReply { json })),
        StatusCode::UNAUTHORIZED => Err(Status::unauthenticated(message())),
        StatusCode::FORBIDDEN => Err(Status::permission_denied(message())),
        StatusCode::TOO_MANY_REQUESTS => Err(Status::resource_exhausted(message())),
        StatusCode::CONFLICT => Err(Status::failed_precondition(message())),
        // Field errors stay machine-readable: the message is the JSON document.
        StatusCode::UNPROCESSABLE_ENTITY if json.contains("\"errors\"") => Err(Status::invalid_argument(json)),
        s if s.is_client_error() => Err(Status::invalid_argument(message())),
        _ => Err(Status::internal(message())),
    }
}

type Reply = Result<tonic::Response<w::JsonReply>, Status>;

#[tonic::async_trait]
impl Exercise for ExerciseService {
    async fn who_am_i(&self, request: Request<w::ExerciseEmpty>) -> Reply {
        let (headers, peer) = edge(&request);
        reply(api::grpc_call(&self.0, api::Call::WhoAmI, headers, peer).await).await
    }

    async fn player_view(&self, request: Request<w::ExerciseEmpty>) -> Reply {
        let (headers, peer) = edge(&request);
        reply(api::grpc_call(&self.0, api::Call::PlayerView, headers, peer).await).await
    }

    async fn submit_orders(&self, request: Request<w::SubmitOrdersRequest>) -> Reply {
        let (headers, peer) = edge(&request);
        let r = request.into_inner();
        let mut orders = Vec::new();
        for o in r.orders {
            let mut v = json!({ "type": o.r#type });
            if o.r#type == "accept_proposal" {
                v["id"] = json!(o.proposal_id);
            } else if o.r#type == "policy" {
                let event: Value = serde_json::from_str(&o.event_json)
                    .map_err(|e| Status::invalid_argument(format!("orders[].event_json is not JSON: {e}")))?;
                v["event"] = event;
            } else {
                v["commodity"] = json!(o.commodity);
                v["quantity_t"] = json!(o.quantity_t);
                v["limit_usd_per_kg"] = json!(o.limit_usd_per_kg);
                v["domestic_only"] = json!(o.domestic_only);
            }
            orders.push(v);
        }
        let body = json!({ "orders": orders, "comment": r.comment });
        reply(api::grpc_call(&self.0, api::Call::Orders(body), headers, peer).await).await
    }

    async fn send_message(&self, request: Request<w::SendMessageRequest>) -> Reply {
        let (headers, peer) = edge(&request);
        let r = request.into_inner();
        let body = json!({ "to": r.to, "text": r.text });
        reply(api::grpc_call(&self.0, api::Call::Message(body), headers, peer).await).await
    }

    async fn control_view(&self, request: Request<w::ExerciseEmpty>) -> Reply {
        let (headers, peer) = edge(&request);
        reply(api::grpc_call(&self.0, api::Call::ControlView, headers, peer).await).await
    }

    async fn control_action(&self, request: Request<w::ControlActionRequest>) -> Reply {
        let (headers, peer) = edge(&request);
        let r = request.into_inner();
        let body = json!({ "action": r.action, "ticks": r.ticks, "seconds": r.seconds, "mode": r.mode });
        reply(api::grpc_call(&self.0, api::Call::ControlAction(body), headers, peer).await).await
    }

    async fn inject_events(&self, request: Request<w::InjectEventsRequest>) -> Reply {
        let (headers, peer) = edge(&request);
        let r = request.into_inner();
        let mut body = json!({ "toml": r.toml, "at_tick": r.at_tick });
        if let Some(commodity) = r.when_commodity {
            body["when_price"] =
                json!({ "commodity": commodity, "stage": r.when_stage, "ratio": r.when_ratio.unwrap_or(0.0) });
        }
        reply(api::grpc_call(&self.0, api::Call::Inject(body), headers, peer).await).await
    }

    async fn add_note(&self, request: Request<w::NoteRequest>) -> Reply {
        let (headers, peer) = edge(&request);
        let r = request.into_inner();
        let body = json!({ "text": r.text, "bookmark": r.bookmark });
        reply(api::grpc_call(&self.0, api::Call::Note(body), headers, peer).await).await
    }
}

/// Serves `chokepoint.v1.Exercise` (with health and reflection) on `listener` until the
/// exercise ends.
pub async fn serve(api: Arc<Api>, listener: tokio::net::TcpListener, shared: Arc<super::Shared>) {
    use proto::v1::exercise_server::ExerciseServer;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ExerciseServer<ExerciseService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let ended = async move {
        while !shared.game().ended {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let mut builder = tonic::transport::Server::builder();
    let router = match reflection {
        Ok(r) => builder.add_service(health_service).add_service(r),
        Err(e) => {
            tracing::warn!("gRPC reflection is unavailable: {e}");
            builder.add_service(health_service)
        }
    };
    if let Err(e) = router
        .add_service(ExerciseServer::new(ExerciseService(api)))
        .serve_with_incoming_shutdown(incoming, ended)
        .await
    {
        tracing::error!("the exercise's gRPC server stopped: {e}");
    }
}
