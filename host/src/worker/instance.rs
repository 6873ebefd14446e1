//! One live plugin instance: its store, its exports, and the limits around every call.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::time::Sleep;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::{EventContext, Plugin, wit, wit_message};
use super::capabilities::{Grants, WallBudget};
use super::engine::{Activity, deadline_ticks};
use super::limits::MemoryCap;
use super::plugin::Version;
use super::state::InstanceState;
use super::timers::{Fired, Timers};
use crate::bus::{AppName, Event, EventKind, Gateways, Group, Handshake, Rejection, Uid};

/// Extra wall time beyond the CPU deadline before a call stuck in a host call is abandoned
/// (outbound HTTP requests add their own timeout to it: see [`WallBudget`]).
const HOST_CALL_GRACE: Duration = Duration::from_secs(5);

/// What every instance of an app shares.
pub struct Limits {
    /// Linear memory cap per instance, bytes.
    pub memory_bytes: usize,
    /// CPU time per event.
    pub deadline: Duration,
    /// Where calls are noted, so the epoch keeps its fast pace while guests run.
    pub activity: Activity,
}

/// Why a call into the plugin failed. The instance is unusable afterwards.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The guest trapped, ran past its deadline or out of memory.
    #[error("{0:#}")]
    Trap(wasmtime::Error),
    /// The call did not return in time (stuck in a host call).
    #[error("no answer within {0:?}")]
    Stuck(Duration),
}

/// A plugin instance and its store.
pub struct Instance {
    store: Store<InstanceState>,
    plugin: Plugin,
    deadline_ticks: u64,
    activity: Activity,
    wall_limit: Duration,
    wall: WallBudget,
}

impl Instance {
    /// Instantiates `version`, whose timers are `timers`.
    pub async fn new(
        version: &Version,
        app: AppName,
        limits: &Limits,
        gateways: Arc<dyn Gateways>,
        timers: Timers,
        grants: &Grants,
    ) -> wasmtime::Result<Self> {
        let wall = WallBudget::default();
        let state = InstanceState::new(
            app,
            version,
            MemoryCap::new(limits.memory_bytes),
            gateways,
            timers,
            grants.clone(),
            wall.clone(),
        );
        let mut store = Store::new(version.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        // Guest code yields to the scheduler at every epoch tick, so a plugin that computes
        // for its whole deadline shares its thread with every other instance; the deadline
        // is counted in the ticks the guest was running, so time spent waiting in a host
        // call, or for a thread, does not count against it.
        let activity = limits.activity.clone();
        store.epoch_deadline_callback(move |mut store| {
            activity.note();
            let state = store.data_mut();
            if state.ticks_left <= 1 {
                return Ok(UpdateDeadline::Interrupt);
            }
            state.ticks_left -= 1;
            // A call's first tick may come a moment after it began; yielding there would
            // move calls of a few µs off the thread that started them (the pool's inline
            // runs). From the second tick on, the call has run a whole tick.
            if !std::mem::replace(&mut state.ticked, true) {
                return Ok(UpdateDeadline::Continue(1));
            }
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        let deadline_ticks = deadline_ticks(limits.deadline);
        // Instantiation runs start functions: it gets the same deadline as an event.
        arm(&mut store, deadline_ticks, &limits.activity);
        let plugin = version.pre.instantiate_async(&mut store).await?;
        Ok(Self {
            store,
            plugin,
            deadline_ticks,
            activity: limits.activity.clone(),
            wall_limit: limits.deadline + HOST_CALL_GRACE,
            wall,
        })
    }

    /// Whether a fired timer is live for this instance.
    pub fn take_fired(&mut self, fired: Fired) -> bool {
        self.store.data_mut().timers.take_fired(fired)
    }

    /// Bytes of linear memory the instance uses now.
    pub fn memory_bytes(&self) -> usize {
        self.store.data().limits.used()
    }
}

/// Gives the next call a budget of `ticks` epoch ticks of running guest code.
fn arm(store: &mut Store<InstanceState>, ticks: u64, activity: &Activity) {
    activity.note();
    let state = store.data_mut();
    state.ticks_left = ticks;
    state.ticked = false;
    store.set_epoch_deadline(1);
}

/// Awaits `call` for `limit` of wall time, plus whatever the call earns in `wall` while it
/// runs (each outbound request it sends adds its timeout). The time counts from the call's
/// first `Pending`: most calls end at their first poll, which then reads no clock and arms
/// no timer, and a first poll lasts two epoch ticks at most.
async fn within<T>(
    call: impl Future<Output = wasmtime::Result<T>>,
    limit: Duration,
    wall: &WallBudget,
) -> Result<T, CallError> {
    tokio::pin!(call);
    let mut timer: Option<(Instant, Pin<Box<Sleep>>)> = None;
    // The call is polled once per wake-up, so its `Pending` reaches the caller as it is: the
    // pool moves a call that yields off the thread that began it.
    std::future::poll_fn(|cx| {
        if let Poll::Ready(ended) = call.as_mut().poll(cx) {
            return Poll::Ready(ended.map_err(CallError::Trap));
        }
        let (started, sleep) = timer.get_or_insert_with(|| {
            let started = Instant::now();
            let sleep = tokio::time::sleep_until((started + limit + wall.extra()).into());
            (started, Box::pin(sleep))
        });
        while sleep.as_mut().poll(cx).is_ready() {
            // Time earned meanwhile moves the limit; otherwise the call is stuck for good.
            let allowed = limit + wall.extra();
            let deadline = (*started + allowed).into();
            if deadline <= sleep.deadline() {
                return Poll::Ready(Err(CallError::Stuck(allowed)));
            }
            sleep.as_mut().reset(deadline);
        }
        Poll::Pending
    })
    .await
}

/// Runs one export call with the instance's deadline and wall-time limit.
macro_rules! guarded {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {{
        arm(&mut $self.store, $self.deadline_ticks, &$self.activity);
        $self.wall.reset();
        let events = $self.plugin.switchboard_plugin_events();
        let call = events.$method(&mut $self.store, $($arg),*);
        within(call, $self.wall_limit, &$self.wall).await
    }};
}

impl Instance {
    /// Calls `on-worker-start`.
    pub async fn start(&mut self, worker_id: u32) -> Result<(), CallError> {
        guarded!(self, call_on_worker_start(worker_id))
    }

    /// Calls `on-worker-stop`.
    pub async fn stop(&mut self, worker_id: u32) -> Result<(), CallError> {
        guarded!(self, call_on_worker_stop(worker_id))
    }

    /// Calls the handler of a client event.
    pub async fn event(&mut self, event: &Event) -> Result<(), CallError> {
        let ctx = EventContext::new(&event.ctx);
        match &event.kind {
            EventKind::Connect => guarded!(self, call_on_connect(ctx.wit())),
            EventKind::Message(m) => {
                guarded!(self, call_on_message(ctx.wit(), wit_message(m)))
            }
            EventKind::Close(bound) => {
                let groups: Vec<&str> = bound.groups.iter().map(Group::as_str).collect();
                let bound = wit::Bound {
                    uid: bound.uid.as_ref().map(Uid::as_str),
                    groups: &groups,
                };
                guarded!(self, call_on_close(ctx.wit(), bound))
            }
        }
    }

    /// Calls `on-websocket-connect`.
    pub async fn handshake(
        &mut self,
        handshake: &Handshake,
    ) -> Result<Result<(), Rejection>, CallError> {
        let ctx = EventContext::new(&handshake.ctx);
        let request = &handshake.request;
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let request = wit::HttpRequest {
            path: &request.path,
            query: &request.query,
            headers: &headers,
        };
        let verdict = guarded!(self, call_on_websocket_connect(ctx.wit(), request))?;
        Ok(verdict.map_err(Rejection::from))
    }

    /// Calls `on-timer`.
    pub async fn timer(&mut self, id: u64) -> Result<(), CallError> {
        guarded!(self, call_on_timer(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::poll_once;

    #[test]
    fn a_call_that_ends_at_its_first_poll_needs_no_clock_or_timer() {
        // Outside a runtime, a timer would panic: none is armed.
        let wall = WallBudget::default();
        let call = within(async { Ok(7) }, Duration::from_secs(1), &wall);
        tokio::pin!(call);
        assert!(matches!(poll_once(call), Poll::Ready(Ok(7))));
    }

    #[tokio::test]
    async fn a_calls_first_pending_reaches_the_caller_before_the_call_is_polled_again() {
        let polls = std::cell::Cell::new(0);
        let call = std::future::poll_fn(|cx| {
            polls.set(polls.get() + 1);
            if polls.get() == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        });
        let wall = WallBudget::default();
        let call = within(call, Duration::from_secs(1), &wall);
        tokio::pin!(call);
        assert!(poll_once(call.as_mut()).is_pending());
        assert_eq!(polls.get(), 1);
        assert!(call.await.is_ok());
        assert_eq!(polls.get(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn time_earned_waiting_on_the_network_extends_the_wall_limit() {
        let wall = WallBudget::default();
        let earning = wall.clone();
        // Earned after the first limit was computed: the wait notices and goes on.
        let call = async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            earning.grant(Duration::from_secs(10));
            tokio::time::sleep(Duration::from_secs(8)).await;
            Ok(())
        };
        assert!(within(call, Duration::from_secs(1), &wall).await.is_ok());

        wall.reset();
        let stuck = async {
            tokio::time::sleep(Duration::from_secs(8)).await;
            Ok(())
        };
        let outcome = within(stuck, Duration::from_secs(1), &wall).await;
        assert!(matches!(outcome, Err(CallError::Stuck(_))));
    }
}
