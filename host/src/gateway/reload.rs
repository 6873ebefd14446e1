//! Which listener settings a reload can apply live, and what changed, in words.
//!
//! Listeners are matched by position: the running listener `i` and the reloaded listener
//! `i` are the same one if their configured `addr`, `protocol` and `app` agree. Only then
//! can its other settings be applied; anything else takes a restart.

use std::sync::Arc;

use super::listener::ListenerState;
use crate::config::ListenerConfig;

/// Reads the certificate files of every TLS listener again (renewed files at the same
/// paths, or the paths of the reloaded config): new handshakes get the new certificate,
/// connected clients keep their sessions. A file that cannot be used leaves the old
/// certificate in place, and says so.
pub(super) fn renew_certificates(
    states: &[Arc<ListenerState>],
    reloaded: &[ListenerConfig],
) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let (Some(tls), Some(new)) = (&state.tls, reloaded.get(i)) else {
            continue;
        };
        let addr = state.local_addr;
        if new.addr != state.config.load().addr {
            continue; // another listener now: the plan already says it needs a restart
        }
        match new.tls().paths() {
            Some((cert, key)) => match tls.reload(cert, key, &[]) {
                Ok(()) => lines.push(format!("listener[{i}] {addr}: certificate reloaded")),
                Err(e) => lines.push(format!(
                    "listener[{i}] {addr}: certificate NOT reloaded, the old one stays: {e}"
                )),
            },
            None => lines.push(format!(
                "listener[{i}] {addr}: turning TLS off needs a restart (still serving TLS)"
            )),
        }
    }
    lines
}

/// What a reload means for the listeners.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Plan {
    /// One human line per change, applied or not.
    pub lines: Vec<String>,
    /// Positions of listeners whose configuration is to be replaced by the reloaded one.
    pub apply: Vec<usize>,
}

/// Compares the running listeners' configurations with the reloaded ones.
pub(super) fn plan(running: &[ListenerConfig], reloaded: &[ListenerConfig]) -> Plan {
    let mut plan = Plan::default();
    for i in 0..running.len().max(reloaded.len()) {
        match (running.get(i), reloaded.get(i)) {
            (Some(old), Some(new)) if same_listener(old, new) => {
                let before = plan.lines.len();
                changes(i, old, new, &mut plan.lines);
                if plan.lines.len() > before {
                    plan.apply.push(i);
                }
            }
            (Some(_), Some(new)) => plan.lines.push(format!(
                "listener[{i}] {}: address/protocol/app changes need a restart",
                new.addr
            )),
            (None, Some(new)) => plan.lines.push(format!(
                "listener[{i}] {}: a new listener needs a restart",
                new.addr
            )),
            (Some(old), None) => plan.lines.push(format!(
                "listener[{i}] {}: removing a listener needs a restart (still serving)",
                old.addr
            )),
            (None, None) => {}
        }
    }
    plan
}

/// Whether two configurations describe the same listener (as configured, port 0 included).
fn same_listener(a: &ListenerConfig, b: &ListenerConfig) -> bool {
    a.addr == b.addr && a.protocol == b.protocol && a.app == b.app
}

/// The lines for the live-changeable settings that differ.
fn changes(i: usize, old: &ListenerConfig, new: &ListenerConfig, lines: &mut Vec<String>) {
    let mut line = |what: &str, from: &dyn std::fmt::Display, to: &dyn std::fmt::Display, note| {
        lines.push(format!(
            "listener[{i}] {}: {what} {from} -> {to}{note}",
            new.addr
        ));
    };
    if old.ping_interval_ms != new.ping_interval_ms {
        let note = match new.ping_interval_ms {
            0 => " (heartbeat off)",
            _ if old.ping_interval_ms == 0 => " (heartbeat on)",
            _ => "",
        };
        line(
            "ping_interval_ms",
            &old.ping_interval_ms,
            &new.ping_interval_ms,
            note,
        );
    }
    if old.ping_not_responding_limit != new.ping_not_responding_limit {
        line(
            "ping_not_responding_limit",
            &old.ping_not_responding_limit,
            &new.ping_not_responding_limit,
            "",
        );
    }
    if old.ping_data != new.ping_data {
        let (from, to) = (
            format!("{:?}", old.ping_data),
            format!("{:?}", new.ping_data),
        );
        line("ping_data", &from, &to, "");
    }
    if old.max_message_bytes != new.max_message_bytes {
        line(
            "max_message_bytes",
            &old.max_message_bytes,
            &new.max_message_bytes,
            " (new connections only)",
        );
    }
    if old.max_connections != new.max_connections {
        let note = match new.max_connections < old.max_connections {
            true => " (connected clients are kept)",
            false => "",
        };
        line(
            "max_connections",
            &old.max_connections,
            &new.max_connections,
            note,
        );
    }
    if old.send_queue != new.send_queue {
        line(
            "send_queue",
            &old.send_queue,
            &new.send_queue,
            " (new connections only)",
        );
    }
    if old.static_dir != new.static_dir {
        let show = |dir: &Option<std::path::PathBuf>| match dir {
            Some(dir) => dir.display().to_string(),
            None => "(none)".to_owned(),
        };
        line(
            "static_dir",
            &show(&old.static_dir),
            &show(&new.static_dir),
            "",
        );
    }
    if old.write_timeout_ms != new.write_timeout_ms {
        line(
            "write_timeout_ms",
            &old.write_timeout_ms,
            &new.write_timeout_ms,
            " (new connections only)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Protocol;

    fn listener(addr: &str, protocol: Protocol) -> ListenerConfig {
        ListenerConfig {
            addr: addr.parse().expect("addr"),
            protocol,
            app: "chat".into(),
            ping_interval_ms: 25_000,
            ping_not_responding_limit: 2,
            ping_data: String::new(),
            max_message_bytes: 65_536,
            max_connections: 1000,
            send_queue: 64,
            write_timeout_ms: 30_000,
            tls_cert: None,
            tls_key: None,
            static_dir: None,
            max_connections_per_ip: 0,
            handshake_timeout_ms: 10_000,
            max_messages_per_second: 0,
            throttle: crate::config::Throttle::Drop,
        }
    }

    fn two() -> Vec<ListenerConfig> {
        vec![
            listener("127.0.0.1:8080", Protocol::WebSocket),
            listener("127.0.0.1:9000", Protocol::Text),
        ]
    }

    #[test]
    fn nothing_changed_plans_nothing() {
        assert_eq!(plan(&two(), &two()), Plan::default());
    }

    #[test]
    fn every_live_setting_gets_its_line_and_is_applied() {
        let mut new = two();
        new[0].ping_interval_ms = 1000;
        new[0].ping_not_responding_limit = 3;
        new[0].ping_data = "hb".into();
        new[0].max_message_bytes = 1024;
        new[0].max_connections = 10;
        new[0].send_queue = 128;
        new[0].static_dir = Some("web".into());
        let p = plan(&two(), &new);
        assert_eq!(
            p.lines,
            [
                "listener[0] 127.0.0.1:8080: ping_interval_ms 25000 -> 1000",
                "listener[0] 127.0.0.1:8080: ping_not_responding_limit 2 -> 3",
                "listener[0] 127.0.0.1:8080: ping_data \"\" -> \"hb\"",
                "listener[0] 127.0.0.1:8080: max_message_bytes 65536 -> 1024 (new connections only)",
                "listener[0] 127.0.0.1:8080: max_connections 1000 -> 10 (connected clients are kept)",
                "listener[0] 127.0.0.1:8080: send_queue 64 -> 128 (new connections only)",
                "listener[0] 127.0.0.1:8080: static_dir (none) -> web",
            ]
        );
        assert_eq!(p.apply, [0]);
    }

    #[test]
    fn heartbeat_off_and_on_are_named() {
        let mut off = two();
        off[1].ping_interval_ms = 0;
        let p = plan(&two(), &off);
        assert_eq!(
            p.lines,
            ["listener[1] 127.0.0.1:9000: ping_interval_ms 25000 -> 0 (heartbeat off)"]
        );
        assert_eq!(p.apply, [1]);
        let p = plan(&off, &two());
        assert_eq!(
            p.lines,
            ["listener[1] 127.0.0.1:9000: ping_interval_ms 0 -> 25000 (heartbeat on)"]
        );
    }

    #[test]
    fn changed_address_protocol_or_app_needs_a_restart() {
        for change in [
            |l: &mut ListenerConfig| l.addr = "127.0.0.1:9001".parse().expect("addr"),
            |l: &mut ListenerConfig| l.protocol = Protocol::Frame,
            |l: &mut ListenerConfig| l.app = "other".into(),
        ] {
            let mut new = two();
            change(&mut new[1]);
            new[1].ping_interval_ms = 1; // Not applied either: the listener is another one.
            let p = plan(&two(), &new);
            assert_eq!(p.lines.len(), 1, "{:?}", p.lines);
            assert!(
                p.lines[0].starts_with("listener[1] 127.0.0.1:900")
                    && p.lines[0].ends_with(": address/protocol/app changes need a restart"),
                "{}",
                p.lines[0]
            );
            assert!(p.apply.is_empty());
        }
    }

    #[test]
    fn added_and_removed_listeners_need_a_restart() {
        let mut more = two();
        more.push(listener("127.0.0.1:7000", Protocol::Frame));
        let p = plan(&two(), &more);
        assert_eq!(
            p.lines,
            ["listener[2] 127.0.0.1:7000: a new listener needs a restart"]
        );
        assert!(p.apply.is_empty());
        let p = plan(&more, &two());
        assert_eq!(
            p.lines,
            ["listener[2] 127.0.0.1:7000: removing a listener needs a restart (still serving)"]
        );
        assert!(p.apply.is_empty());
    }

    #[test]
    fn matching_is_by_position() {
        // Swapped listeners are two changed ones, not a reordering.
        let mut swapped = two();
        swapped.swap(0, 1);
        let p = plan(&two(), &swapped);
        assert_eq!(p.lines.len(), 2);
        assert!(p.apply.is_empty());
        // A live change next to a restart-only one still applies.
        let mut mixed = two();
        mixed[0].max_connections = 5;
        mixed[1].app = "other".into();
        let p = plan(&two(), &mixed);
        assert_eq!(p.apply, [0]);
        assert_eq!(p.lines.len(), 2);
    }
}
