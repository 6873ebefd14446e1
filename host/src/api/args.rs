//! The arguments of one API call: a JSON object checked against the function's declared
//! parameters, and typed getters the handlers decode them with.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::functions::{Function, Param};
use crate::bus::calls::{CallError, MAX_PAGE};
use crate::bus::{InfoFields, Message};

/// Page size of a list call without `limit`.
pub const DEFAULT_LIMIT: u32 = 100;

fn bad(detail: String) -> CallError {
    CallError::InvalidArgument(detail)
}

/// The arguments of one call: a JSON object whose keys are all parameters of the function
/// and that holds every required one. A `null` value counts as absent.
#[derive(Debug)]
pub struct Args(Map<String, Value>);

impl Args {
    /// Checks a request body against the function's parameters; an empty body is `{}`.
    pub fn parse(body: &[u8], function: &Function) -> Result<Self, CallError> {
        let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?
        };
        let Value::Object(mut map) = value else {
            return Err(bad("the body must be a JSON object of the arguments".into()));
        };
        map.retain(|_, v| !v.is_null());
        if let Some(key) = map
            .keys()
            .find(|k| !function.params.iter().any(|p| p.name == k.as_str()))
        {
            return Err(bad(format!("{} takes no argument `{key}`", function.name)));
        }
        if let Some(p) = function
            .params
            .iter()
            .find(|p| p.required && !map.contains_key(p.name))
        {
            return Err(bad(format!("the argument `{}` is missing", p.name)));
        }
        Ok(Self(map))
    }

    fn get(&self, p: &Param) -> Option<&Value> {
        self.0.get(p.name)
    }

    fn mistyped(p: &Param, what: &str) -> CallError {
        bad(format!("the argument `{}` must be {what}", p.name))
    }

    pub(super) fn string(&self, p: &Param) -> Result<String, CallError> {
        self.opt_string(p)?
            .ok_or_else(|| bad(format!("the argument `{}` is missing", p.name)))
    }

    pub(super) fn opt_string(&self, p: &Param) -> Result<Option<String>, CallError> {
        match self.get(p) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Self::mistyped(p, "a string")),
        }
    }

    pub(super) fn message(&self, p: &Param) -> Result<Message, CallError> {
        let shape = "{\"text\": STRING} or {\"binary\": BASE64}";
        let Some(Value::Object(m)) = self.get(p) else {
            return Err(Self::mistyped(p, shape));
        };
        match (m.len(), m.get("text"), m.get("binary")) {
            (1, Some(Value::String(text)), None) => Ok(Message::text(text.as_str())),
            (1, None, Some(Value::String(b64))) => BASE64
                .decode(b64)
                .map(Message::binary)
                .map_err(|e| bad(format!("`{}.binary` is not base64: {e}", p.name))),
            _ => Err(Self::mistyped(p, shape)),
        }
    }

    /// An array of strings: client ids, uids or groups, checked by the call.
    pub(super) fn ids(&self, p: &Param) -> Result<Vec<String>, CallError> {
        match self.get(p) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| Self::mistyped(p, "an array of strings")),
            Some(_) => Err(Self::mistyped(p, "an array of strings")),
        }
    }

    pub(super) fn limit(&self, p: &Param) -> Result<u32, CallError> {
        match self.get(p) {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| Self::mistyped(p, &format!("an integer 1..={MAX_PAGE}"))),
        }
    }

    fn bool_or(&self, p: &Param, default: bool) -> Result<bool, CallError> {
        match self.get(p) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(Self::mistyped(p, "true or false")),
        }
    }

    pub(super) fn unique(&self, p: &Param) -> Result<bool, CallError> {
        self.bool_or(p, true)
    }

    pub(super) fn flag(&self, p: &Param) -> Result<bool, CallError> {
        self.bool_or(p, false)
    }

    pub(super) fn percent(&self, p: &Param) -> Result<Option<f32>, CallError> {
        match self.get(p) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|n| Some(n as f32))
                .ok_or_else(|| Self::mistyped(p, "a number")),
        }
    }

    pub(super) fn fields(&self, p: &Param) -> Result<InfoFields, CallError> {
        let Some(value) = self.get(p) else {
            return Ok(InfoFields {
                remote_ip: true,
                remote_port: true,
                uid: true,
                session: true,
                groups: true,
                system: true,
            });
        };
        let what = "an array of remote_ip, remote_port, uid, session, groups, system";
        let Value::Array(items) = value else {
            return Err(Self::mistyped(p, what));
        };
        let mut fields = InfoFields::default();
        for item in items {
            let flag = match item.as_str() {
                Some("remote_ip") => &mut fields.remote_ip,
                Some("remote_port") => &mut fields.remote_port,
                Some("uid") => &mut fields.uid,
                Some("session") => &mut fields.session,
                Some("groups") => &mut fields.groups,
                Some("system") => &mut fields.system,
                _ => return Err(Self::mistyped(p, what)),
            };
            *flag = true;
        }
        Ok(fields)
    }

    pub(super) fn session(&self, p: &Param) -> Result<Vec<(String, String)>, CallError> {
        let what = "an object of string values";
        let Some(Value::Object(map)) = self.get(p) else {
            return Err(Self::mistyped(p, what));
        };
        map.iter()
            .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect::<Option<_>>()
            .ok_or_else(|| Self::mistyped(p, what))
    }
}
