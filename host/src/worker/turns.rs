//! Fair turns within one instance: events queue per client, and the clients with queued
//! events are served round-robin, one event each, so a client that floods its app delays
//! the others that hash to the same instance by one event per turn at most, while each
//! client's own events still run in order. Plain data: the instance task drives it.

use std::collections::{HashMap, VecDeque};

use crate::bus::ClientId;

/// Per-client queues and the order in which their clients take turns.
#[derive(Debug)]
pub struct Turns<J> {
    queues: HashMap<ClientId, VecDeque<J>>,
    ring: VecDeque<ClientId>,
    len: usize,
}

impl<J> Default for Turns<J> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
            ring: VecDeque::new(),
            len: 0,
        }
    }
}

impl<J> Turns<J> {
    /// Queues a job of `client` behind its earlier ones.
    pub fn push(&mut self, client: ClientId, job: J) {
        let queue = self.queues.entry(client).or_default();
        if queue.is_empty() {
            self.ring.push_back(client);
        }
        queue.push_back(job);
        self.len += 1;
    }

    /// The oldest job of the client whose turn it is; that client goes to the back.
    pub fn pop(&mut self) -> Option<(ClientId, J)> {
        let client = self.ring.pop_front()?;
        let queue = self.queues.get_mut(&client)?;
        let job = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&client);
        } else {
            self.ring.push_back(client);
        }
        self.len -= 1;
        Some((client, job))
    }

    /// Jobs queued for `client`.
    pub fn queued(&self, client: ClientId) -> usize {
        self.queues.get(&client).map_or(0, VecDeque::len)
    }

    /// Jobs queued in all.
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::GatewayId;

    fn client(seq: u64) -> ClientId {
        ClientId::new(GatewayId::new(7).expect("non-zero"), seq).expect("valid")
    }

    #[test]
    fn a_flooding_client_waits_its_turn_and_each_client_keeps_its_order() {
        let (a, b, c) = (client(1), client(2), client(3));
        let mut turns = Turns::default();
        for n in 0..100 {
            turns.push(a, ("a", n));
        }
        turns.push(b, ("b", 0));
        turns.push(b, ("b", 1));
        turns.push(c, ("c", 0));
        let order: Vec<_> = std::iter::from_fn(|| turns.pop().map(|(_, job)| job))
            .take(6)
            .collect();
        assert_eq!(
            order,
            [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("a", 2)]
        );
        assert_eq!(turns.len(), 97);
        assert_eq!(turns.queued(a), 97);
        assert_eq!(turns.queued(b), 0);
        let rest: Vec<_> = std::iter::from_fn(|| turns.pop().map(|(_, job)| job.1)).collect();
        assert_eq!(rest, (3..100).collect::<Vec<_>>());
        assert_eq!(turns.len(), 0);
    }

    #[test]
    fn a_client_that_comes_back_joins_the_end_of_the_ring() {
        let (a, b) = (client(1), client(2));
        let mut turns = Turns::default();
        turns.push(a, 1);
        assert_eq!(turns.pop(), Some((a, 1)));
        assert_eq!(turns.pop(), None);
        turns.push(b, 2);
        turns.push(a, 3);
        assert_eq!(turns.pop(), Some((b, 2)));
        assert_eq!(turns.pop(), Some((a, 3)));
        assert_eq!(turns.len(), 0);
    }
}
