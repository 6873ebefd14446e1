//! Auth: a WebSocket client is let in only with a token that an HTTP service vouches for.
//!
//! On the handshake the plugin reads the `token` query parameter and asks the service at the
//! app's variable `auth_url` (`GET {auth_url}?token=TOKEN`). A `200` answer's body is the
//! user's uid: the client is bound to it and let in. Any other answer refuses the handshake
//! with `401`; a service that cannot be reached refuses it with `503`. The service's host
//! must be in the app's `allowed_outbound_hosts`. Once in, every message comes back as
//! `UID: TEXT`. The details are in README.md.

use switchboard_sdk::{
    self as sb, Context, HttpRequest, LogLevel, Message, Plugin, Rejection, export, http, variables,
};

/// The variable naming the token-checking endpoint.
const AUTH_URL: &str = "auth_url";

/// The auth plugin; it keeps no state of its own (the uid is bound on the gateway).
#[derive(Default)]
struct Auth;

/// Asks the service who `token` belongs to: the uid, or the rejection to send.
fn check_token(token: &str) -> Result<String, Rejection> {
    let Some(url) = variables::get(AUTH_URL) else {
        sb::log(
            LogLevel::Error,
            &format!("auth: the variable {AUTH_URL} is not set in [apps.NAME.variables]"),
        );
        return Err(Rejection::new(503, "authentication is not configured"));
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    // The token is passed on as it came: already encoded for a query string.
    let response = http::get(&format!("{url}{separator}token={token}")).map_err(|e| {
        sb::log(LogLevel::Warn, &format!("auth: asking {url}: {e}"));
        Rejection::new(503, "authentication service unavailable")
    })?;
    let uid = response.text().trim().to_owned();
    if response.status() == 200 && !uid.is_empty() {
        Ok(uid)
    } else {
        Err(Rejection::unauthorized("invalid token"))
    }
}

impl Plugin for Auth {
    fn on_websocket_connect(
        &mut self,
        ctx: &Context,
        request: HttpRequest,
    ) -> Result<(), Rejection> {
        let token = request
            .query_param("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Rejection::unauthorized("missing token"))?;
        let uid = check_token(token)?;
        ctx.client().bind_uid(&uid).map_err(|e| {
            sb::log(LogLevel::Warn, &format!("auth: binding {uid}: {e}"));
            Rejection::new(503, "cannot bind the user")
        })?;
        Ok(())
    }

    fn on_message(&mut self, ctx: &Context, message: Message) {
        let uid = ctx.uid().unwrap_or("?");
        let reply = match message {
            Message::Text(text) => Message::Text(format!("{uid}: {text}")),
            binary => binary,
        };
        if let Err(e) = ctx.reply(reply) {
            sb::log(LogLevel::Warn, &format!("auth: reply failed: {e}"));
        }
    }
}

export!(Auth);
