//! A client's send queue: bounded, many senders (whoever sends to the client, through the
//! registry), one receiver (the connection's task). Besides messages it carries the two
//! signals the writer acts on, the heartbeat's tick and the gateway going away, so the
//! writer waits on this one queue alone: every wake of a connection polls what it waits on.
//!
//! tokio's bounded channel would do, but it allocates its first block of 32 slots and its
//! cache-padded state when created, about 1.8 KiB for every connection whether anything is
//! ever sent to it or not. This queue allocates its slots on the first message and gives
//! them back once drained (keeping a few, so a steady trickle does not allocate per message):
//! an idle client costs the small shared header only.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use super::lock;

/// Slots a drained queue keeps rather than freeing them (a `VecDeque`'s smallest growth).
const KEPT_SLOTS: usize = 4;

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused<T> {
    /// The queue holds its capacity already: the client cannot keep up.
    Full(T),
    /// The receiver is gone (the connection is ending).
    Closed(T),
}

/// Creates a queue holding at most `capacity` messages (at least one).
pub(super) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            waker: None,
            senders: 1,
            receiving: true,
            tick: false,
            going_away: false,
            quiet: false,
            missed: false,
        }),
        capacity: capacity.max(1),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    /// The receiver's waker while it waits.
    waker: Option<Waker>,
    /// Live senders: the receiver sees the end once there are none and the queue is empty.
    senders: usize,
    /// The receiver still exists.
    receiving: bool,
    /// A heartbeat interval ended (taken ahead of the messages queued).
    tick: bool,
    /// The gateway is going away: the receiver ends once the queue is drained.
    going_away: bool,
    /// The receiver's task is running and looks at the queue itself afterwards (see [`Quiet`]).
    quiet: bool,
    /// A message was queued without a wake-up during the quiet.
    missed: bool,
}

/// What the receiver takes next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next<T> {
    /// A message.
    Message(T),
    /// A heartbeat interval ended.
    Tick,
    /// Everything queued has been taken and the gateway is going away.
    GoingAway,
    /// Every sender is gone and everything queued has been taken.
    Ended,
}

/// The sending end; cloning makes another sender.
pub(super) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    /// Queues `item` without waiting; wakes the receiver.
    pub(super) fn try_send(&self, item: T) -> Result<(), Refused<T>> {
        let waker = {
            let mut state = lock(&self.shared.state);
            if !state.receiving {
                return Err(Refused::Closed(item));
            }
            if state.items.len() >= self.shared.capacity {
                return Err(Refused::Full(item));
            }
            state.items.push_back(item);
            // Under the lock, like the quiet's start and end: a send is either in the quiet
            // and told at its end, or outside it and wakes.
            if state.quiet {
                state.missed = true;
                None
            } else {
                state.waker.take()
            }
        };
        // Woken outside the lock, so the receiver never wakes into a held lock.
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Tells the receiver that a heartbeat interval ended: its next take is [`Next::Tick`].
    pub(super) fn tick(&self) {
        signal(&self.shared, |state| state.tick = true);
    }

    /// Tells the receiver that the gateway is going away: it takes what is queued, then
    /// [`Next::GoingAway`].
    pub(super) fn going_away(&self) {
        signal(&self.shared, |state| state.going_away = true);
    }
}

/// Sets a signal in the queue's state and wakes the receiver.
fn signal<T>(shared: &Shared<T>, set: impl FnOnce(&mut State<T>)) {
    let waker = {
        let mut state = lock(&shared.state);
        set(&mut state);
        state.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.shared.state).senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.shared.state);
            state.senders -= 1;
            if state.senders == 0 {
                state.waker.take()
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The receiving end.
pub(super) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// What to do next: a heartbeat tick comes first, then the messages in order, then the
    /// end (the gateway going away, or every sender gone). Cancel-safe: nothing is taken
    /// unless this returns it.
    pub(super) async fn recv(&mut self) -> Next<T> {
        poll_fn(|cx| {
            let mut state = lock(&self.shared.state);
            if std::mem::take(&mut state.tick) {
                return Poll::Ready(Next::Tick);
            }
            if let Some(item) = take(&mut state) {
                return Poll::Ready(Next::Message(item));
            }
            if state.going_away {
                return Poll::Ready(Next::GoingAway);
            }
            if state.senders == 0 {
                return Poll::Ready(Next::Ended);
            }
            match &mut state.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// The most messages the queue holds.
    pub(super) fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// The next message if one is queued now.
    pub(super) fn try_recv(&mut self) -> Option<T> {
        take(&mut lock(&self.shared.state))
    }

    /// The switch that spares this receiver's task the wake-ups it would cause itself.
    pub(super) fn quiet(&self) -> Quiet<T> {
        Quiet {
            shared: self.shared.clone(),
        }
    }
}

/// Lets the receiver's task run code that sends to its own queue (the app answering a message
/// inline) without waking itself: a wake-up from inside a poll costs the task a whole second
/// poll later, where it can as well take the message in this one. Between `begin` and `end`,
/// messages queued wake nobody; `end` says whether the task must look at its queue again.
pub(super) struct Quiet<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Quiet<T> {
    /// From now on, messages queued do not wake the receiver.
    pub(super) fn begin(&self) {
        let mut state = lock(&self.shared.state);
        state.quiet = true;
        state.missed = false;
    }

    /// Ends the quiet; `true` if a message was queued meanwhile without waking the receiver,
    /// which must then be polled again.
    pub(super) fn end(&self) -> bool {
        let mut state = lock(&self.shared.state);
        state.quiet = false;
        std::mem::take(&mut state.missed)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.receiving = false;
        // Nothing queued will be read: freed now rather than with the last sender.
        state.items = VecDeque::new();
        state.waker = None;
    }
}

/// Takes the first message; a queue left empty gives back all but a few of its slots.
fn take<T>(state: &mut State<T>) -> Option<T> {
    let item = state.items.pop_front()?;
    if state.items.is_empty() && state.items.capacity() > KEPT_SLOTS {
        state.items = VecDeque::new();
    }
    Some(item)
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake};

    use super::*;

    /// Counts wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A waker, and the count of its wake-ups.
    fn counting_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    fn slots<T>(rx: &Receiver<T>) -> usize {
        lock(&rx.shared.state).items.capacity()
    }

    #[test]
    fn a_new_queue_allocates_no_slots() {
        let (_tx, rx) = channel::<u32>(1000);
        assert_eq!(slots(&rx), 0);
    }

    #[test]
    fn a_drained_queue_gives_back_its_slots() {
        let (tx, mut rx) = channel(1000);
        for i in 0..100 {
            tx.try_send(i).expect("room");
        }
        assert!(slots(&rx) >= 100);
        for i in 0..100 {
            assert_eq!(rx.try_recv(), Some(i));
        }
        assert_eq!(slots(&rx), 0);
        // A trickle of one message at a time keeps its few slots instead of allocating
        // for each message.
        tx.try_send(1).expect("room");
        assert_eq!(rx.try_recv(), Some(1));
        assert!(slots(&rx) <= KEPT_SLOTS);
    }

    #[test]
    fn messages_come_out_in_order_and_a_full_queue_refuses() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).expect("room");
        tx.try_send(2).expect("room");
        assert_eq!(tx.try_send(3), Err(Refused::Full(3)));
        assert_eq!(rx.try_recv(), Some(1));
        tx.try_send(3).expect("room again");
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn a_send_wakes_the_waiting_receiver() {
        let (tx, mut rx) = channel(4);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut next = pin!(rx.recv());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        tx.try_send(7).expect("room");
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(next.as_mut().poll(&mut cx), Poll::Ready(Next::Message(7)));
    }

    #[test]
    fn the_receiver_sees_the_end_after_the_last_sender_and_the_queue() {
        let (tx, mut rx) = channel(4);
        let other = tx.clone();
        tx.try_send(1).expect("room");
        drop(tx);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(rx.try_recv(), Some(1));
        let mut next = pin!(rx.recv());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        drop(other);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(next.as_mut().poll(&mut cx), Poll::Ready(Next::Ended));
    }

    #[test]
    fn a_tick_goes_ahead_of_the_queue_and_going_away_behind_it() {
        let (tx, mut rx) = channel(4);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        {
            let mut next = pin!(rx.recv());
            assert!(next.as_mut().poll(&mut cx).is_pending());
            tx.tick();
        }
        tx.try_send(1).expect("room");
        tx.going_away();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        let mut taken = Vec::new();
        for _ in 0..3 {
            match pin!(rx.recv()).poll(&mut cx) {
                Poll::Ready(next) => taken.push(next),
                Poll::Pending => panic!("nothing to take"),
            }
        }
        assert_eq!(taken, [Next::Tick, Next::Message(1), Next::GoingAway]);
        // Going away stays: the writer is told again if it asks again.
        assert_eq!(pin!(rx.recv()).poll(&mut cx), Poll::Ready(Next::GoingAway));
    }

    #[test]
    fn a_send_in_the_quiet_wakes_nobody_and_the_end_tells() {
        let (tx, mut rx) = channel(4);
        let quiet = rx.quiet();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(pin!(rx.recv()).poll(&mut cx).is_pending());
        quiet.begin();
        tx.try_send(1).expect("room");
        assert_eq!(count.0.load(Ordering::Relaxed), 0, "woken in the quiet");
        assert!(quiet.end(), "the end must tell of the send");
        assert_eq!(pin!(rx.recv()).poll(&mut cx), Poll::Ready(Next::Message(1)));
        // A quiet without sends tells nothing, and after it sends wake the receiver again.
        quiet.begin();
        assert!(!quiet.end());
        assert!(pin!(rx.recv()).poll(&mut cx).is_pending());
        tx.try_send(2).expect("room");
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_send_racing_the_quiet_is_always_told_one_way_or_the_other() {
        for _ in 0..200 {
            let (tx, mut rx) = channel(4);
            let quiet = rx.quiet();
            let (count, waker) = counting_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(pin!(rx.recv()).poll(&mut cx).is_pending());
            let sender = std::thread::spawn(move || tx.try_send(1).expect("room"));
            let mut told = false;
            while !sender.is_finished() {
                quiet.begin();
                told |= quiet.end();
            }
            sender.join().expect("sender");
            let woken = count.0.load(Ordering::Relaxed) > 0;
            assert!(told || woken, "a message came in unseen");
        }
    }

    #[test]
    fn sending_after_the_receiver_is_gone_is_refused() {
        let (tx, rx) = channel(4);
        drop(rx);
        assert_eq!(tx.try_send(1), Err(Refused::Closed(1)));
    }
}
