//! The heartbeat of one connection, as a state machine fed with activity and ticks.
//!
//! GatewayWorker's meaning: every interval the server pings, and a client that sent nothing
//! for `limit` consecutive intervals is closed (limit 0: never). The state machine has no
//! clock; the connection task feeds it the ticks of its listener's shared ticker.

/// What to do on a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// Send the ping.
    Ping,
    /// The client has been silent too long: close it.
    Close,
}

/// Silence counting for one connection.
#[derive(Clone, Copy, Debug)]
pub struct Heartbeat {
    limit: u32,
    silent: u32,
    active: bool,
}

impl Heartbeat {
    /// A fresh connection; `limit` silent intervals close it, 0 never does.
    pub fn new(limit: u32) -> Self {
        // Connecting counts as activity, so the first (partial) interval of a client that
        // connected just before a shared tick does not count as silence.
        Self {
            limit,
            silent: 0,
            active: true,
        }
    }

    /// Takes on a new limit (the listener was reconfigured); the silence so far counts.
    pub fn with_limit(&mut self, limit: u32) -> &mut Self {
        self.limit = limit;
        self
    }

    /// The client sent something (any frame or bytes).
    pub fn activity(&mut self) {
        self.active = true;
    }

    /// An interval ended.
    pub fn tick(&mut self) -> Beat {
        if std::mem::take(&mut self.active) {
            self.silent = 0;
        } else {
            self.silent = self.silent.saturating_add(1);
        }
        if self.limit > 0 && self.silent >= self.limit {
            Beat::Close
        } else {
            Beat::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_client_is_closed_after_limit_full_intervals() {
        let mut hb = Heartbeat::new(2);
        assert_eq!(hb.tick(), Beat::Ping, "the interval it connected in");
        assert_eq!(hb.tick(), Beat::Ping, "one silent interval");
        assert_eq!(hb.tick(), Beat::Close, "two silent intervals");
    }

    #[test]
    fn any_activity_resets_the_count() {
        let mut hb = Heartbeat::new(2);
        hb.tick();
        hb.tick();
        hb.activity();
        assert_eq!(hb.tick(), Beat::Ping);
        assert_eq!(hb.tick(), Beat::Ping);
        hb.activity();
        hb.activity();
        assert_eq!(hb.tick(), Beat::Ping);
        assert_eq!(hb.tick(), Beat::Ping);
        assert_eq!(hb.tick(), Beat::Close);
    }

    #[test]
    fn an_active_client_is_never_closed() {
        let mut hb = Heartbeat::new(1);
        for _ in 0..100 {
            hb.activity();
            assert_eq!(hb.tick(), Beat::Ping);
        }
    }

    #[test]
    fn limit_one_closes_after_one_silent_interval() {
        let mut hb = Heartbeat::new(1);
        assert_eq!(hb.tick(), Beat::Ping);
        assert_eq!(hb.tick(), Beat::Close);
    }

    #[test]
    fn limit_zero_only_pings() {
        let mut hb = Heartbeat::new(0);
        for _ in 0..1000 {
            assert_eq!(hb.tick(), Beat::Ping);
        }
    }
}
