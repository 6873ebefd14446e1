//! The heartbeat of one connection, as a state machine fed with activity and ticks.
//!
//! GatewayWorker's meaning: every interval the server pings the clients that sent nothing
//! during it (one that did has just shown it is alive), and a client that sent nothing for
//! `limit` consecutive intervals is closed (limit 0: never). The state machine has no clock:
//! its listener's ticker marks the end of each interval in the send queue of every client,
//! and the connection's writer feeds it that tick.

/// What to do on a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// The client sent something during the interval: nothing to do.
    Quiet,
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
            return Beat::Quiet;
        }
        self.silent = self.silent.saturating_add(1);
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
        assert_eq!(hb.tick(), Beat::Quiet, "the interval it connected in");
        assert_eq!(hb.tick(), Beat::Ping, "one silent interval");
        assert_eq!(hb.tick(), Beat::Close, "two silent intervals");
    }

    #[test]
    fn any_activity_resets_the_count() {
        let mut hb = Heartbeat::new(2);
        hb.tick();
        hb.tick();
        hb.activity();
        assert_eq!(hb.tick(), Beat::Quiet);
        assert_eq!(hb.tick(), Beat::Ping);
        hb.activity();
        hb.activity();
        assert_eq!(hb.tick(), Beat::Quiet);
        assert_eq!(hb.tick(), Beat::Ping);
        assert_eq!(hb.tick(), Beat::Close);
    }

    #[test]
    fn a_client_that_sent_anything_in_the_period_is_not_pinged() {
        let mut hb = Heartbeat::new(1);
        for _ in 0..100 {
            hb.activity();
            assert_eq!(hb.tick(), Beat::Quiet);
        }
    }

    #[test]
    fn only_silent_periods_are_pinged() {
        let mut hb = Heartbeat::new(0);
        hb.tick();
        let beats: Vec<Beat> = [true, false, false, true, false]
            .into_iter()
            .map(|talked| {
                if talked {
                    hb.activity();
                }
                hb.tick()
            })
            .collect();
        use Beat::{Ping, Quiet};
        assert_eq!(beats, [Quiet, Ping, Ping, Quiet, Ping]);
    }

    #[test]
    fn limit_one_closes_after_one_silent_interval() {
        let mut hb = Heartbeat::new(1);
        assert_eq!(hb.tick(), Beat::Quiet);
        assert_eq!(hb.tick(), Beat::Close);
    }

    #[test]
    fn limit_zero_never_closes() {
        let mut hb = Heartbeat::new(0);
        hb.tick();
        for _ in 0..1000 {
            assert_eq!(hb.tick(), Beat::Ping);
        }
    }

    #[test]
    fn a_lowered_limit_counts_the_silence_so_far() {
        let mut hb = Heartbeat::new(5);
        hb.tick();
        assert_eq!(hb.tick(), Beat::Ping);
        assert_eq!(hb.tick(), Beat::Ping);
        assert_eq!(hb.with_limit(3).tick(), Beat::Close);
    }
}
