use std::sync::{Arc, Mutex};

use serde_json::{Map, json};

use super::*;
use crate::bus::{BusError, Command, Gateways, Query, Reply};

/// Gateways with no client, recording what reaches them.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl Gateways for Recorder {
    async fn command(&self, _: &str, command: Command) -> Result<(), BusError> {
        self.0.lock().expect("lock").push(format!("{command:?}"));
        Ok(())
    }
    async fn query(&self, _: &str, query: Query) -> Result<Reply, BusError> {
        self.0.lock().expect("lock").push(format!("{query:?}"));
        Ok(Reply::nobody(&query))
    }
}

fn example(ty: Ty) -> Value {
    match ty {
        Ty::ClientId => json!("0000000100000000000a"),
        Ty::Name => json!("room"),
        Ty::Message => json!({"binary": "AAEC"}),
        Ty::ClientIds => json!(["0000000100000000000b"]),
        Ty::Names => json!(["room", "hall"]),
        Ty::Limit => json!(10),
        Ty::Bool => json!(true),
        Ty::Percent => json!(1.5),
        Ty::Fields => json!(["uid", "groups"]),
        Ty::Session => json!({"k": "v"}),
    }
}

fn body(params: &[Param]) -> Vec<u8> {
    let map: Map<String, Value> = params
        .iter()
        .map(|p| (p.name.to_owned(), example(p.ty)))
        .collect();
    Value::Object(map).to_string().into_bytes()
}

async fn run(f: &Function, body: &[u8]) -> (Result<Value, CallError>, Vec<String>) {
    let recorder = Arc::new(Recorder::default());
    let calls = Calls::new(recorder.clone(), "chat".into());
    let result = match Args::parse(body, f) {
        Ok(args) => (f.call)(calls, args).await,
        Err(e) => Err(e),
    };
    let seen = recorder.0.lock().expect("lock").clone();
    (result, seen)
}

#[test]
fn every_wit_api_function_but_timers_and_log_is_exposed() {
    let wit = include_str!("../../../../wit/switchboard.wit");
    let api = wit
        .split("interface api {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("the api interface");
    let wit_names: Vec<&str> = api
        .lines()
        .filter_map(|line| line.trim().split_once(": func"))
        .map(|(name, _)| name)
        .filter(|name| !matches!(*name, "set-timer" | "clear-timer" | "log" | "unhandled"))
        .collect();
    let ours: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
    assert_eq!(ours, wit_names, "the table follows the WIT, in its order");
}

#[tokio::test]
async fn every_function_takes_its_declared_arguments() {
    for f in FUNCTIONS {
        let (result, seen) = run(f, &body(f.params)).await;
        assert!(result.is_ok(), "{}: {result:?}", f.name);
        // close-client-with is a send and a close, applied in that order.
        let expected = if f.name == "close-client-with" { 2 } else { 1 };
        assert_eq!(seen.len(), expected, "{}: bus calls: {seen:?}", f.name);
        // Optional arguments may all be left out.
        let required: Vec<Param> = f.params.iter().copied().filter(|p| p.required).collect();
        let (result, _) = run(f, &body(&required)).await;
        assert!(result.is_ok(), "{} without optionals: {result:?}", f.name);
    }
}

#[tokio::test]
async fn a_malformed_body_is_refused_before_anything_reaches_the_bus() {
    for f in FUNCTIONS {
        for missing in f.params.iter().filter(|p| p.required) {
            let rest: Vec<Param> = f
                .params
                .iter()
                .copied()
                .filter(|p| p.name != missing.name)
                .collect();
            let (result, seen) = run(f, &body(&rest)).await;
            assert!(
                matches!(result, Err(CallError::InvalidArgument(_))),
                "{} without {}: {result:?}",
                f.name,
                missing.name
            );
            assert!(seen.is_empty(), "{}: {seen:?}", f.name);
        }
        for bad in [&b"{"[..], b"[1]", b"\"x\"", br#"{"colour": 1}"#] {
            let (result, seen) = run(f, bad).await;
            assert!(
                matches!(result, Err(CallError::InvalidArgument(_))),
                "{}: {result:?}",
                f.name
            );
            assert!(seen.is_empty());
        }
    }
    let send = find("send-to-uid").expect("exists");
    for message in [
        json!("hi"),
        json!({"text": 1}),
        json!({"binary": "!!"}),
        json!({"text": "a", "binary": "AA=="}),
    ] {
        let b = json!({"uid": "u", "message": message}).to_string();
        let (result, seen) = run(send, b.as_bytes()).await;
        assert!(
            matches!(result, Err(CallError::InvalidArgument(_))),
            "{message}"
        );
        assert!(seen.is_empty());
    }
}

#[tokio::test]
async fn binary_messages_are_base64_and_text_stays_text() {
    let send = find("send-to-all").expect("exists");
    let (_, seen) = run(send, br#"{"message": {"binary": "AAEC"}}"#).await;
    assert!(seen[0].contains("Binary(3 bytes)"), "{seen:?}");
    let (_, seen) = run(send, br#"{"message": {"text": "hi"}}"#).await;
    assert!(seen[0].contains("Text(\"hi\")"), "{seen:?}");
}

#[test]
fn the_openapi_document_describes_every_function_with_its_arguments() {
    let doc = super::super::openapi::document();
    for f in FUNCTIONS {
        let op = &doc["paths"][format!("/api/v1/apps/{{app}}/{}", f.name)]["post"];
        assert_eq!(op["operationId"], f.name);
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        let props = schema["properties"].as_object().expect("properties");
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        let mut declared: Vec<&str> = f.params.iter().map(|p| p.name).collect();
        declared.sort_unstable();
        assert_eq!(names, declared, "{}", f.name);
    }
}
