//! The HTTP server API (`[api]`): other backends call an app's WIT `api` functions over HTTP,
//! `POST /api/v1/apps/{app}/{function}` with the arguments as a JSON object.
//!
//! It stands on the same [`Gateways`] handle a worker uses, through the same mapping
//! ([`Calls`]), so it reaches every gateway of a cluster unchanged. This module is the one
//! place that maps call outcomes to HTTP statuses.

pub mod args;
pub mod functions;
pub mod openapi;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::bus::Gateways;
use crate::bus::calls::{CallError, Calls, MAX_SEND_BYTES};
use functions::Args;

/// Largest request body: the largest message, base64-encoded, and room for the rest.
const MAX_BODY: usize = MAX_SEND_BYTES / 3 * 4 + 64 * 1024;

/// The API's state: where calls go, which apps exist, who may call.
pub struct Api {
    gateways: Arc<dyn Gateways>,
    apps: Vec<String>,
    /// SHA-256 of each token: comparing digests takes the same time whatever the length of
    /// the token presented.
    tokens: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("apps", &self.apps)
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API over `gateways` for `apps`, open to holders of `tokens`.
    pub fn new(gateways: Arc<dyn Gateways>, apps: Vec<String>, tokens: &[String]) -> Self {
        Self {
            gateways,
            apps,
            tokens: tokens.iter().map(|t| digest(t)).collect(),
        }
    }

    /// Whether the request carries `Authorization: Bearer TOKEN` with a known token. Every
    /// token is compared, in constant time, whatever matches.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| digest(token.trim()));
        let Some(presented) = presented else {
            return false;
        };
        let matched = self
            .tokens
            .iter()
            .fold(subtle::Choice::from(0), |any, t| any | t.ct_eq(&presented));
        matched.into()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Why a request failed before or during its call.
#[derive(Debug)]
enum Failure {
    /// No valid token.
    Unauthorized,
    /// No such app, function or path.
    NotFound(String),
    /// The body is above [`MAX_BODY`].
    BodyTooLarge,
    /// The call's own error.
    Call(CallError),
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, kind, detail) = match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer TOKEN with a token of [api]".to_owned(),
            ),
            Self::NotFound(detail) => (StatusCode::NOT_FOUND, "not-found", detail),
            Self::BodyTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the request body is above {MAX_BODY} bytes"),
            ),
            Self::Call(e) => {
                let status = match &e {
                    CallError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                    CallError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                    CallError::InvalidClientId(_)
                    | CallError::InvalidName(_)
                    | CallError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
                };
                (status, e.kind(), e.to_string())
            }
        };
        let body = json!({"err": {"kind": kind, "detail": detail}});
        let mut response = json_response(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The routes of the API.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/api/v1/apps/{app}/{function}", post(call))
        .fallback(|| async { Failure::NotFound("no such path: see /api/v1/openapi.json".into()) })
        .with_state(api)
}

async fn openapi_document() -> Response {
    json_response(StatusCode::OK, &openapi::document())
}

async fn call(
    State(api): State<Arc<Api>>,
    Path((app, function)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    // Checked before anything else: without a token nobody learns which apps exist, and
    // no body is buffered.
    if !api.authorized(&headers) {
        return Err(Failure::Unauthorized);
    }
    if !api.apps.contains(&app) {
        return Err(Failure::NotFound(format!("no app {app:?}")));
    }
    let Some(f) = functions::find(&function) else {
        return Err(Failure::NotFound(format!("no function {function:?}")));
    };
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| Failure::BodyTooLarge)?;
    let args = Args::parse(&body, f).map_err(Failure::Call)?;
    let calls = Calls::new(api.gateways.clone(), app.as_str().into());
    let result = (f.call)(calls, args).await.map_err(Failure::Call)?;
    tracing::debug!(app, function, "api call");
    Ok(json_response(StatusCode::OK, &json!({ "ok": result })))
}

/// Serves the API on a bound listener until the task is aborted.
pub async fn serve(listener: crate::gateway::tls::WebListener, api: Arc<Api>) {
    if let Err(e) = axum::serve(listener, router(api)).await {
        tracing::error!(error = %e, "the HTTP API stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        struct Nobody;
        #[async_trait::async_trait]
        impl Gateways for Nobody {
            async fn command(
                &self,
                _: &str,
                _: crate::bus::Command,
            ) -> Result<(), crate::bus::BusError> {
                Ok(())
            }
            async fn query(
                &self,
                _: &str,
                q: crate::bus::Query,
            ) -> Result<crate::bus::Reply, crate::bus::BusError> {
                Ok(crate::bus::Reply::nobody(&q))
            }
        }
        let tokens = [
            "0123456789abcdef".to_owned(),
            "another-secret-token".to_owned(),
        ];
        Api::new(Arc::new(Nobody), vec!["chat".into()], &tokens)
    }

    fn with(auth: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(auth).expect("header"),
        );
        headers
    }

    #[tokio::test]
    async fn each_outcome_maps_to_its_status_and_kind() {
        let cases = [
            (Failure::Unauthorized, 401, "unauthorized"),
            (Failure::NotFound("x".into()), 404, "not-found"),
            (Failure::BodyTooLarge, 413, "too-large"),
            (
                Failure::Call(CallError::InvalidClientId("x".into())),
                400,
                "invalid-client-id",
            ),
            (
                Failure::Call(CallError::InvalidName("x".into())),
                400,
                "invalid-name",
            ),
            (
                Failure::Call(CallError::InvalidArgument("x".into())),
                400,
                "invalid-argument",
            ),
            (
                Failure::Call(CallError::TooLarge("x".into())),
                413,
                "too-large",
            ),
            (
                Failure::Call(CallError::Timeout("x".into())),
                504,
                "timeout",
            ),
        ];
        for (failure, status, kind) in cases {
            let response = failure.into_response();
            assert_eq!(response.status().as_u16(), status, "{kind}");
            assert_eq!(
                response.headers().contains_key(header::WWW_AUTHENTICATE),
                status == 401
            );
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .expect("body");
            let body: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(body["err"]["kind"], json!(kind));
            assert!(body["err"]["detail"].is_string());
        }
    }

    #[test]
    fn only_a_known_bearer_token_is_authorized() {
        let api = api();
        assert!(api.authorized(&with("Bearer 0123456789abcdef")));
        assert!(api.authorized(&with("bearer another-secret-token")));
        assert!(!api.authorized(&HeaderMap::new()));
        assert!(!api.authorized(&with("Bearer 0123456789abcde")));
        assert!(!api.authorized(&with("Basic 0123456789abcdef")));
        assert!(!api.authorized(&with("0123456789abcdef")));
    }
}
