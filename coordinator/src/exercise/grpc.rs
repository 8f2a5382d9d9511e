//! The exercise over gRPC (`chokepoint.v1.Exercise`), for scripted players and bots. Each call
//! decodes into the same [`Command`] as its HTTP route and runs through the same [`execute`],
//! with the token taken from the `authorization` metadata (rate limits are per token, as over
//! HTTP), so the two interfaces cannot disagree; a refusal's kind becomes the gRPC code.

use super::Api;
use super::command::{
    ApiError, Command, ControlBody, InjectBody, MessageBody, NoteBody, OrdersBody, WhenPrice, execute,
};
use proto::v1 as w;
use proto::v1::exercise_server::Exercise;
use serde_json::{Value, json};
use std::sync::Arc;
use tonic::{Request, Status};

pub struct ExerciseService(pub Arc<Api>);

impl ExerciseService {
    /// Runs `command` for the caller of `request` (its `authorization` metadata and address),
    /// answering the JSON document or the gRPC status its error's kind calls for.
    fn call<T>(&self, request: &Request<T>, command: impl FnOnce() -> Result<Command, Status>) -> Reply {
        let token = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let token = token.strip_prefix("Bearer ").unwrap_or("");
        let role = self.0.authenticate(token).map_err(status)?;
        let value = execute(&self.0, role, command()?).map_err(status)?;
        Ok(tonic::Response::new(w::JsonReply { json: value.to_string() }))
    }
}

/// The gRPC status for a refusal. Field errors stay machine-readable: their message is the
/// JSON document `{"errors": [...]}`.
fn status(e: ApiError) -> Status {
    let message = e.message();
    match e {
        ApiError::Unauthorized(_) => Status::unauthenticated(message),
        ApiError::Forbidden(_) => Status::permission_denied(message),
        ApiError::TooManyAttempts(_) => Status::resource_exhausted(message),
        ApiError::Ended(_) => Status::failed_precondition(message),
        ApiError::Malformed(_) | ApiError::TooLarge(_) | ApiError::Invalid(_) | ApiError::Fields(_) => {
            Status::invalid_argument(message)
        }
    }
}

type Reply = Result<tonic::Response<w::JsonReply>, Status>;

/// One order of a `SubmitOrdersRequest` as the JSON value validation reads (so its field errors
/// are the HTTP route's).
fn order_value(o: w::OrderSpec) -> Result<Value, Status> {
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
    Ok(v)
}

#[tonic::async_trait]
impl Exercise for ExerciseService {
    async fn who_am_i(&self, request: Request<w::ExerciseEmpty>) -> Reply {
        self.call(&request, || Ok(Command::WhoAmI))
    }

    async fn player_view(&self, request: Request<w::ExerciseEmpty>) -> Reply {
        self.call(&request, || Ok(Command::PlayerView))
    }

    async fn submit_orders(&self, request: Request<w::SubmitOrdersRequest>) -> Reply {
        let body = request.get_ref().clone();
        self.call(&request, move || {
            let orders = body.orders.into_iter().map(order_value).collect::<Result<Vec<_>, _>>()?;
            Ok(Command::Orders(OrdersBody { orders, comment: body.comment, replace: body.replace }))
        })
    }

    async fn send_message(&self, request: Request<w::SendMessageRequest>) -> Reply {
        let r = request.get_ref().clone();
        self.call(&request, move || Ok(Command::Message(MessageBody { to: r.to, text: r.text })))
    }

    async fn control_view(&self, request: Request<w::ExerciseEmpty>) -> Reply {
        self.call(&request, || Ok(Command::ControlView))
    }

    async fn control_action(&self, request: Request<w::ControlActionRequest>) -> Reply {
        let r = request.get_ref().clone();
        self.call(&request, move || {
            let replacement = match r.replacement_json.as_deref() {
                Some(text) => Some(
                    serde_json::from_str(text)
                        .map_err(|e| Status::invalid_argument(format!("replacement_json is not JSON: {e}")))?,
                ),
                None => None,
            };
            Ok(Command::ControlAction(ControlBody {
                action: r.action,
                ticks: r.ticks,
                seconds: r.seconds,
                mode: r.mode,
                scope: r.scope,
                turn: r.turn,
                nation: r.nation,
                order: r.order,
                replacement,
                note: r.note,
            }))
        })
    }

    async fn inject_events(&self, request: Request<w::InjectEventsRequest>) -> Reply {
        let r = request.get_ref().clone();
        self.call(&request, move || {
            let when_price = r.when_commodity.map(|commodity| WhenPrice {
                commodity,
                stage: r.when_stage,
                ratio: r.when_ratio.unwrap_or(0.0),
            });
            Ok(Command::Inject(InjectBody { toml: r.toml, name: r.name, at_tick: r.at_tick, when_price }))
        })
    }

    async fn add_note(&self, request: Request<w::NoteRequest>) -> Reply {
        let r = request.get_ref().clone();
        self.call(&request, move || Ok(Command::Note(NoteBody { text: r.text, bookmark: r.bookmark })))
    }
}

/// Serves `chokepoint.v1.Exercise` (with health and reflection) on `listener` until the
/// exercise ends.
pub async fn serve(
    api: Arc<Api>,
    listener: tokio::net::TcpListener,
    shared: Arc<super::Shared>,
    tls: Option<crate::tls::Tls>,
) {
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
    if let Some(tls) = &tls {
        crate::tls::install_provider();
        builder = match builder.tls_config(tls.grpc()) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("the exercise's gRPC server cannot use TLS: {e}");
                return;
            }
        };
    }
    let router = match reflection {
        Ok(r) => builder.add_service(health_service).add_service(r),
        Err(e) => {
            tracing::warn!("gRPC reflection is unavailable: {e}");
            builder.add_service(health_service)
        }
    };
    if let Err(e) = router
        .add_service(ExerciseServer::new(ExerciseService(api)).max_decoding_message_size(super::http::BODY_LIMIT))
        .serve_with_incoming_shutdown(incoming, ended)
        .await
    {
        tracing::error!("the exercise's gRPC server stopped: {e}");
    }
}
