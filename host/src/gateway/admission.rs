//! Who may connect and how fast a client may talk: connections per address, and a token
//! bucket of messages per second. Plain data fed with the time, tested without sockets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Open connections per client address of one listener.
#[derive(Debug, Default)]
pub struct PerIp {
    open: HashMap<IpAddr, usize>,
}

impl PerIp {
    /// Takes a connection for `ip` unless it has `max` already (0: no limit).
    pub fn try_take(&mut self, ip: IpAddr, max: usize) -> bool {
        let open = self.open.entry(ip).or_insert(0);
        if max != 0 && *open >= max {
            return false;
        }
        *open += 1;
        true
    }

    /// Gives back a connection of `ip`.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(open) = self.open.get_mut(&ip) {
            *open -= 1;
            if *open == 0 {
                self.open.remove(&ip);
            }
        }
    }
}

/// A client's message rate: `rate` a second on average, bursts of up to one second's worth.
#[derive(Debug, Clone)]
pub struct RateLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    /// A full bucket of `rate` messages a second, as of `now`.
    pub fn new(rate: u32, now: Instant) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: now,
        }
    }

    /// Whether a message arriving at `now` is within the rate; takes its token if so.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_address_may_hold_max_connections_and_gets_them_back() {
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let mut per_ip = PerIp::default();
        assert!(per_ip.try_take(a, 2));
        assert!(per_ip.try_take(a, 2));
        assert!(!per_ip.try_take(a, 2), "a third from the same address");
        assert!(per_ip.try_take(b, 2), "another address is not affected");
        per_ip.release(a);
        assert!(per_ip.try_take(a, 2));
        per_ip.release(a);
        per_ip.release(a);
        per_ip.release(b);
        assert!(per_ip.open.is_empty(), "nothing kept for gone addresses");
        for _ in 0..1000 {
            assert!(per_ip.try_take(a, 0), "0 is no limit");
        }
    }

    #[test]
    fn a_client_gets_a_burst_of_one_second_then_the_rate() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(10, t0);
        let burst = (0..20).filter(|_| limit.allow(t0)).count();
        assert_eq!(burst, 10);
        // 100 ms later: one more token.
        assert!(limit.allow(t0 + Duration::from_millis(100)));
        assert!(!limit.allow(t0 + Duration::from_millis(100)));
        // Idle for long: never more than one second's worth.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| limit.allow(later)).count(), 10);
    }
}
