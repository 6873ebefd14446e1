//! An app's pool of instances: one task per instance, events routed by client id so each
//! client's events run in order on one instance.
//!
//! An event that finds its instance idle, with nothing queued, runs at once on the thread
//! that dispatches it, with the jobs queued behind it for a while ([`INLINE_STRETCH`]). That
//! saves two thread hand-offs (the plugin thread's wake-up and the answer's way back), which
//! cost more than a short call itself. A call still running at its second epoch tick moves to
//! the plugin threads, and its instance then runs only there for [`INLINE_BAR`], as after a
//! few slow calls in a row: a slow plugin holds a socket thread for a few ms a second at most.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedMutexGuard, Semaphore, TryAcquireError, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::app::{AppControl, Deployment};
use super::bindings::switchboard::plugin::api::ClientHandler;
use super::capabilities::Grants;
use super::instance::{CallError, Instance, Limits};
use super::timers::{Clock, Fired, Timers};
use super::turns::Turns;
use super::unhandled;
use crate::bus::{ClientId, Event, Gateways, Handshake, Rejection};

/// Jobs one client may have queued before its sender waits: a client that floods its app
/// is slowed down at its own connection.
const PER_CLIENT: usize = 64;

/// Jobs queued per instance before every sender waits.
const QUEUE: usize = 4096;

/// How long an inline run goes on taking the jobs queued behind its own.
const INLINE_STRETCH: Duration = Duration::from_micros(500);

/// Inline calls slower than this, [`SLOW_IN_A_ROW`] in a row, bar their instance from
/// running inline (for [`INLINE_BAR`]).
const INLINE_SLOW: Duration = Duration::from_micros(250);

/// See [`INLINE_SLOW`].
const SLOW_IN_A_ROW: u32 = 3;

/// How long an instance whose inline call had to move to the plugin threads runs only there.
const INLINE_BAR: Duration = Duration::from_secs(1);

/// Work for one instance about one client.
pub enum Job {
    /// A client event.
    Event(Event),
    /// A WebSocket handshake awaiting a verdict.
    Handshake(Handshake, oneshot::Sender<Result<(), Rejection>>),
}

/// What every instance of a pool shares.
pub struct PoolEnv {
    /// Memory and time limits.
    pub limits: Limits,
    /// When to replace a healthy instance with a fresh one.
    pub recycle: Recycle,
    /// Where API calls go.
    pub gateways: Arc<dyn Gateways>,
    /// The plugin threads the instance tasks run on.
    pub guests: tokio::runtime::Handle,
    /// What the app's plugin may reach beyond the API.
    pub grants: Grants,
    /// What the instances' timers count time on.
    pub clock: Clock,
}

/// When a healthy instance is replaced by a fresh one, for guests whose memory only grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recycle {
    /// After this many events.
    pub after_events: Option<u64>,
    /// Once its linear memory is above this many bytes.
    pub above_memory_bytes: Option<u64>,
}

impl Recycle {
    /// Why an instance that handled `events` and uses `memory` bytes is due, if it is.
    fn due(&self, events: u64, memory: u64) -> Option<String> {
        if let Some(limit) = self.after_events
            && events >= limit
        {
            return Some(format!("after {events} events"));
        }
        match self.above_memory_bytes {
            Some(limit) if memory > limit => Some(format!("at {} MiB of memory", memory >> 20)),
            _ => None,
        }
    }
}

/// What an instance task takes next.
enum Next {
    /// A job, its client's turn.
    Job(Job),
    /// Nothing is queued and the pool is stopping.
    Stop,
}

#[derive(Default)]
struct Queue {
    turns: Turns<Job>,
    /// Clients at their `PER_CLIENT` limit with a sender waiting, and what wakes it.
    at_limit: HashMap<ClientId, Arc<Notify>>,
    stopping: bool,
    /// A thread that dispatched a job runs it, and takes what is queued meanwhile: a push
    /// need not wake the instance task.
    inline: bool,
    /// The instance task has ended: jobs can no longer be taken.
    ended: bool,
}

/// One instance's queue: clients take turns, and each sender waits only while its own
/// client (or the whole instance) has too much queued.
struct Inbox {
    queue: Mutex<Queue>,
    /// Wakes the instance task; a permit is kept if it is busy.
    work: Notify,
    /// One permit per free place in the queue. A fair line: a freed place wakes the sender
    /// that has waited longest, not all of them, a herd whose cost would grow with the
    /// backlog (docs/security.md, the soak).
    places: Semaphore,
}

impl Default for Inbox {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            work: Notify::new(),
            places: Semaphore::new(QUEUE),
        }
    }
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`; waits while `client` has `PER_CLIENT` jobs queued or the instance
    /// `QUEUE`. Hands the job back if the instance task has ended.
    async fn push(&self, client: ClientId, job: Job) -> Result<(), Job> {
        loop {
            let place = match self.places.try_acquire() {
                Ok(place) => place,
                Err(TryAcquireError::Closed) => return Err(job),
                Err(TryAcquireError::NoPermits) => match self.places.acquire().await {
                    Ok(place) => place,
                    Err(_closed) => return Err(job),
                },
            };
            let client_room = {
                let mut queue = self.lock();
                if queue.ended {
                    return Err(job);
                }
                if queue.turns.queued(client) < PER_CLIENT {
                    place.forget();
                    queue.turns.push(client, job);
                    let wake = !queue.inline;
                    drop(queue);
                    if wake {
                        self.work.notify_one();
                    }
                    return Ok(());
                }
                // Registered under the lock, so the pop that makes room cannot be missed.
                let wake = queue.at_limit.entry(client).or_default();
                Arc::clone(wake).notified_owned()
            };
            // The place goes to the next sender in line while this one waits for its client.
            drop(place);
            client_room.await;
        }
    }

    /// The next job in turn, or `None` if there is nothing to do yet.
    fn pop(&self) -> Option<Next> {
        let mut queue = self.lock();
        if let Some(job) = self.take(&mut queue) {
            return Some(Next::Job(job));
        }
        queue.stopping.then_some(Next::Stop)
    }

    /// Takes the job whose turn it is, freeing its place.
    fn take(&self, queue: &mut MutexGuard<'_, Queue>) -> Option<Job> {
        let (client, job) = queue.turns.pop()?;
        if !queue.at_limit.is_empty()
            && let Some(wake) = queue.at_limit.remove(&client)
        {
            wake.notify_waiters();
        }
        self.places.add_permits(1);
        Some(job)
    }

    /// Claims the instance for an inline run if nothing is queued and the task takes jobs
    /// as usual.
    fn claim_inline(&self) -> bool {
        let mut queue = self.lock();
        let idle = queue.turns.len() == 0 && !queue.stopping && !queue.ended;
        queue.inline |= idle;
        idle
    }

    /// For an inline run: the next job queued meanwhile if it may go on (`more`), else ends
    /// the run, waking the instance task if anything is left for it (or `care`).
    fn next_inline(&self, more: bool, care: bool) -> Option<Job> {
        let mut queue = self.lock();
        if more && !queue.ended {
            let job = self.take(&mut queue);
            if job.is_some() {
                return job;
            }
        }
        queue.inline = false;
        let left = queue.turns.len() > 0 || queue.stopping;
        drop(queue);
        if left || care {
            self.work.notify_one();
        }
        None
    }

    /// Asks the task to stop once everything queued is done.
    fn stop(&self) {
        self.lock().stopping = true;
        self.work.notify_one();
    }

    /// The task has ended: senders get their jobs back, and jobs still queued are dropped
    /// with a warning.
    fn end(&self) {
        let mut queue = self.lock();
        queue.ended = true;
        let left = queue.turns.len();
        while queue.turns.pop().is_some() {}
        let waiting = std::mem::take(&mut queue.at_limit);
        drop(queue);
        self.places.close();
        for wake in waiting.into_values() {
            wake.notify_waiters();
        }
        if left > 0 {
            tracing::warn!(left, "instance task has ended; queued events dropped");
        }
    }
}

/// Ends an inbox when its task ends, however it ends.
struct Ending(Arc<Inbox>);

impl Drop for Ending {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// One instance: its queue, and its slot, held by whoever runs a call on it.
struct Lane {
    inbox: Arc<Inbox>,
    slot: Arc<tokio::sync::Mutex<Slot>>,
    /// Until when (in ms since `epoch`) calls run on the plugin threads only; 0: no bar.
    barred_until_ms: AtomicU64,
    epoch: Instant,
}

impl Lane {
    /// The slot, if a job can run on the caller's thread now: the instance is live and idle
    /// with nothing queued (so no earlier event of the client is waiting) and not barred.
    fn take_idle(&self) -> Option<OwnedMutexGuard<Slot>> {
        let bar = self.barred_until_ms.load(Ordering::Relaxed);
        if bar != 0 {
            if (self.epoch.elapsed().as_millis() as u64) < bar {
                return None;
            }
            // Lifted, so later dispatches skip the clock (unless a new bar came meanwhile).
            let _ =
                self.barred_until_ms
                    .compare_exchange(bar, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
        let slot = self.slot.clone().try_lock_owned().ok()?;
        (slot.ready() && self.inbox.claim_inline()).then_some(slot)
    }

    /// Keeps calls of this instance on the plugin threads for [`INLINE_BAR`].
    fn bar(&self) {
        let until = (self.epoch.elapsed() + INLINE_BAR).as_millis() as u64;
        self.barred_until_ms.store(until.max(1), Ordering::Relaxed);
    }
}

/// Running instances of an app.
pub struct Pool {
    lanes: Vec<Arc<Lane>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    guests: tokio::runtime::Handle,
}

impl Pool {
    /// Starts `size` instances of the app's current version; each runs `on-worker-start`
    /// right away and follows the app's later deployments.
    pub fn start(control: Arc<AppControl>, env: Arc<PoolEnv>, size: usize) -> Self {
        let epoch = Instant::now();
        let (lanes, tasks) = (0..size)
            .map(|worker_id| {
                let (fired_tx, fired_rx) = mpsc::unbounded_channel();
                let slot = Slot::new(control.clone(), env.clone(), worker_id as u32, fired_tx);
                let lane = Arc::new(Lane {
                    inbox: Arc::default(),
                    slot: Arc::new(tokio::sync::Mutex::new(slot)),
                    barred_until_ms: AtomicU64::new(0),
                    epoch,
                });
                let task = env
                    .guests
                    .spawn(run(lane.clone(), control.subscribe(), fired_rx));
                (lane, task)
            })
            .unzip();
        Self {
            lanes,
            tasks: Mutex::new(tasks),
            guests: env.guests.clone(),
        }
    }

    /// Number of instances.
    pub fn size(&self) -> usize {
        self.lanes.len()
    }

    /// Runs a job on the instance that owns `client`: at once if it is idle, else queued;
    /// waits while that client, or the instance, has too much queued.
    pub async fn dispatch(&self, client: ClientId, job: Job) {
        let lane = self.lane(client);
        if let Some(slot) = lane.take_idle() {
            self.run_now(lane, slot, job);
            return;
        }
        if lane.inbox.push(client, job).await.is_err() {
            tracing::warn!(%client, "instance task has ended; event dropped");
        }
    }

    /// Runs an event at once if the instance that owns its client is idle; else hands it
    /// back, for [`Pool::dispatch`].
    pub fn try_run(&self, event: Event) -> Option<Event> {
        let lane = self.lane(event.ctx.client);
        let Some(slot) = lane.take_idle() else {
            return Some(event);
        };
        self.run_now(lane, slot, Job::Event(event));
        None
    }

    fn lane(&self, client: ClientId) -> &Arc<Lane> {
        &self.lanes[slot_index(client, self.lanes.len())]
    }

    /// Polls the job's call once, here; a call that does not end at its first poll moves to
    /// the plugin threads, whose first poll of it registers the wake-ups it waits for.
    fn run_now(&self, lane: &Arc<Lane>, slot: OwnedMutexGuard<Slot>, job: Job) {
        let mut call = Box::pin(run_inline(slot, job, lane.clone()));
        let mut cx = Context::from_waker(Waker::noop());
        if call.as_mut().poll(&mut cx).is_pending() {
            lane.bar();
            self.guests.spawn(call);
        }
    }

    /// Lets every instance finish its queue and run `on-worker-stop`, then waits for them.
    pub async fn stop(&self) {
        for lane in &self.lanes {
            lane.inbox.stop();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!("instance task failed: {e}");
            }
        }
    }
}

/// Runs `job` on the slot taken idle, then what was queued meanwhile for up to
/// [`INLINE_STRETCH`] of calls; whatever is left (jobs, a new instance after a failure, a
/// recycling) goes to the instance task, which it wakes. [`SLOW_IN_A_ROW`] calls slower than
/// [`INLINE_SLOW`] bar the instance from running inline (one alone may be a preempted thread).
async fn run_inline(mut slot: OwnedMutexGuard<Slot>, job: Job, lane: Arc<Lane>) {
    let mut job = Some(job);
    let mut ran = Duration::ZERO;
    while let Some(next) = job {
        let took = slot.run(next).await;
        ran += took;
        if took <= INLINE_SLOW {
            slot.slow_calls = 0;
        } else {
            slot.slow_calls += 1;
            if slot.slow_calls >= SLOW_IN_A_ROW {
                slot.slow_calls = 0;
                lane.bar();
            }
        }
        let more = slot.ready() && ran < INLINE_STRETCH;
        job = lane.inbox.next_inline(more, slot.care.is_some());
    }
}

/// An instance's task on the plugin threads: takes the queued jobs, timers and new
/// deployments in turn, whenever no inline call holds the slot.
async fn run(
    lane: Arc<Lane>,
    mut deployments: watch::Receiver<Arc<Deployment>>,
    mut fired_rx: mpsc::UnboundedReceiver<Fired>,
) {
    let _ending = Ending(lane.inbox.clone());
    lane.slot.lock().await.instance().await;
    // Timers and events take turns: after an event, a due timer goes first.
    let mut timer_turn = false;
    loop {
        {
            let mut slot = lane.slot.lock().await;
            loop {
                // A new deployment (checked first) takes over between two events: the one
                // running has finished, and the ones queued behind it run on the new version,
                // in order.
                if slot.deployments.has_changed().unwrap_or(false) {
                    slot.adopt().await;
                    continue;
                }
                slot.tend().await;
                if timer_turn && let Ok(fired) = fired_rx.try_recv() {
                    timer_turn = false;
                    slot.timer(fired).await;
                    continue;
                }
                match lane.inbox.pop() {
                    Some(Next::Job(job)) => {
                        timer_turn = true;
                        slot.run(job).await;
                    }
                    Some(Next::Stop) => {
                        slot.retire().await;
                        return;
                    }
                    None => break,
                }
            }
        }
        tokio::select! {
            biased;
            Ok(()) = deployments.changed() => {
                deployments.borrow_and_update();
            }
            () = lane.inbox.work.notified() => {}
            Some(fired) = fired_rx.recv() => {
                timer_turn = false;
                lane.slot.lock().await.timer(fired).await;
            }
        }
    }
}

/// The instance that owns a client: a hash of its id, so the choice spreads evenly.
fn slot_index(client: ClientId, slots: usize) -> usize {
    let key = (u64::from(client.gateway().get()) << 48) ^ client.seq();
    let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mixed >> 32) % slots as u64) as usize
}

/// What a finished call left for the instance task to do.
enum Care {
    /// Replace the failed instance.
    Replace,
    /// Replace the healthy instance, for this reason.
    Recycle(String),
}

/// One instance's state: the deployment it runs and its instance (absent after a failure
/// until replaced).
struct Slot {
    control: Arc<AppControl>,
    env: Arc<PoolEnv>,
    worker_id: u32,
    deployments: watch::Receiver<Arc<Deployment>>,
    deployment: Arc<Deployment>,
    instance: Option<Instance>,
    /// Events the current instance has handled.
    handled: u64,
    generation: u64,
    fired_tx: mpsc::UnboundedSender<Fired>,
    /// Left by the last call, for the instance task.
    care: Option<Care>,
    /// Inline calls in a row slower than [`INLINE_SLOW`].
    slow_calls: u32,
}

impl Slot {
    fn new(
        control: Arc<AppControl>,
        env: Arc<PoolEnv>,
        worker_id: u32,
        fired_tx: mpsc::UnboundedSender<Fired>,
    ) -> Self {
        let mut deployments = control.subscribe();
        let deployment = deployments.borrow_and_update().clone();
        Self {
            control,
            env,
            worker_id,
            deployments,
            deployment,
            instance: None,
            handled: 0,
            generation: 0,
            fired_tx,
            care: None,
            slow_calls: 0,
        }
    }

    /// Whether a job can run without first starting an instance or adopting a deployment.
    fn ready(&self) -> bool {
        self.instance.is_some()
            && self.care.is_none()
            && !self.deployments.has_changed().unwrap_or(true)
    }

    /// Runs a job; returns how long its call into the plugin took.
    async fn run(&mut self, job: Job) -> Duration {
        match job {
            Job::Event(event) => self.event(event).await,
            Job::Handshake(handshake, reply) => {
                let started = Instant::now();
                let _ = reply.send(self.handshake(handshake).await);
                started.elapsed()
            }
        }
    }

    /// Does what the last call left: replaces a failed instance at once (unless a new
    /// deployment replaces it anyway), so its successor's `on-worker-start` and timers run
    /// without waiting for an event; recycles a healthy one that is due.
    async fn tend(&mut self) {
        match self.care.take() {
            Some(Care::Replace) if !self.deployments.has_changed().unwrap_or(false) => {
                self.instance().await;
            }
            Some(Care::Recycle(why)) => {
                tracing::debug!(
                    app = &*self.control.name,
                    worker = self.worker_id,
                    "recycling the instance {why}"
                );
                self.control.stats.recycles.fetch_add(1, Ordering::Relaxed);
                self.retire().await;
                self.instance().await;
            }
            _ => {}
        }
    }

    /// Moves to the current deployment: the old instance gets `on-worker-stop` (its timers
    /// end with it), a new one gets `on-worker-start`.
    async fn adopt(&mut self) {
        let next = self.deployments.borrow_and_update().clone();
        if Arc::ptr_eq(&next, &self.deployment) {
            return;
        }
        self.retire().await;
        self.care = None;
        self.deployment = next;
        self.instance().await;
    }

    async fn retire(&mut self) {
        if let Some(mut instance) = self.instance.take()
            && let Err(e) = instance.stop(self.worker_id).await
        {
            self.failed("on-worker-stop", None, &e);
        }
    }

    /// The live instance, creating (and starting) one if there is none.
    async fn instance(&mut self) -> Option<&mut Instance> {
        if self.instance.is_none() {
            // Boxed: instantiating takes a large future, which every call would carry.
            self.instance = Box::pin(self.create()).await;
            self.handled = 0;
        }
        self.instance.as_mut()
    }

    /// A new instance of the current deployment, started; `None` if either failed.
    async fn create(&mut self) -> Option<Instance> {
        self.generation += 1;
        let created = Instance::new(
            &self.deployment.version,
            self.control.name.clone(),
            &self.env.limits,
            self.env.gateways.clone(),
            Timers::new(
                self.fired_tx.clone(),
                self.generation,
                self.env.clock.clone(),
            ),
            &self.env.grants,
        )
        .await;
        self.control
            .stats
            .instantiations
            .fetch_add(1, Ordering::Relaxed);
        let mut instance = match created {
            Ok(instance) => instance,
            Err(e) => {
                self.failed("instantiate", None, &CallError::Trap(e));
                return None;
            }
        };
        if let Err(e) = instance.start(self.worker_id).await {
            self.failed("on-worker-start", None, &e);
            return None;
        }
        Some(instance)
    }

    /// Hands an event to its handler; returns how long the call took (nothing if skipped).
    async fn event(&mut self, event: Event) -> Duration {
        // Reported while the event was queued: done as the SDK's default would, by nothing.
        if self.deployment.version.unhandled.skips(&event.kind) {
            self.control.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Duration::ZERO;
        }
        let name = unhandled::name(unhandled::handler_of(&event.kind));
        let Some(instance) = self.instance().await else {
            self.lost(name, Some(event.ctx.client));
            return Duration::ZERO;
        };
        let started = Instant::now();
        let outcome = instance.event(&event).await;
        let took = started.elapsed();
        self.control.stats.latency.record(took);
        self.settle(name, Some(event.ctx.client), outcome);
        took
    }

    async fn handshake(&mut self, handshake: Handshake) -> Result<(), Rejection> {
        // After on-connect, which ran on this instance: the default accepts.
        if self
            .deployment
            .version
            .unhandled
            .contains(ClientHandler::OnWebsocketConnect)
        {
            self.control.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let client = handshake.ctx.client;
        let refused = Rejection {
            status: 500,
            reason: "the app failed to handle the handshake".into(),
        };
        let Some(instance) = self.instance().await else {
            self.lost("on-websocket-connect", Some(client));
            return Err(refused);
        };
        let outcome = instance.handshake(&handshake).await;
        self.settle("on-websocket-connect", Some(client), outcome)
            .unwrap_or(Err(refused))
    }

    async fn timer(&mut self, fired: Fired) {
        let Some(instance) = self.instance.as_mut() else {
            return;
        };
        if instance.take_fired(fired) {
            let outcome = instance.timer(fired.id).await;
            self.settle("on-timer", None, outcome);
        }
    }

    /// Counts the outcome of a call; a failed instance is dropped, and replacing it (or
    /// recycling a healthy one that is due) is left to [`Slot::tend`].
    fn settle<T>(
        &mut self,
        event: &str,
        client: Option<ClientId>,
        outcome: Result<T, CallError>,
    ) -> Option<T> {
        let stats = &self.control.stats;
        match outcome {
            Ok(value) => {
                stats.events.fetch_add(1, Ordering::Relaxed);
                if !self
                    .control
                    .unhandled()
                    .covers(&self.deployment.version.unhandled)
                {
                    self.control.publish_unhandled(&self.deployment);
                }
                self.handled += 1;
                let memory = self
                    .instance
                    .as_ref()
                    .map_or(0, |i| i.memory_bytes() as u64);
                stats.peak_memory_bytes.fetch_max(memory, Ordering::Relaxed);
                self.judge(true);
                self.care = self
                    .env
                    .recycle
                    .due(self.handled, memory)
                    .map(Care::Recycle);
                Some(value)
            }
            Err(e) => {
                self.instance = None;
                self.failed(event, client, &e);
                self.care = Some(Care::Replace);
                None
            }
        }
    }

    /// Feeds an outcome to the deployment's probation; rolls back when it trips.
    fn judge(&self, ok: bool) {
        if self.deployment.record(ok) {
            self.control.roll_back(&self.deployment);
        }
    }

    fn failed(&self, event: &str, client: Option<ClientId>, error: &CallError) {
        self.control.stats.failures.fetch_add(1, Ordering::Relaxed);
        let reason = describe(error, &self.env.limits);
        tracing::warn!(
            app = &*self.control.name,
            version = &*self.deployment.version.hash,
            worker = self.worker_id,
            client = client.map(|c| c.to_string()),
            "{event} failed, event lost, instance replaced: {reason}"
        );
        self.judge(false);
    }

    fn lost(&self, event: &str, client: Option<ClientId>) {
        self.control.stats.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            app = &*self.control.name,
            version = &*self.deployment.version.hash,
            worker = self.worker_id,
            client = client.map(|c| c.to_string()),
            "{event} lost: no instance could be started"
        );
        self.judge(false);
    }
}

/// A failure in words an operator can act on.
fn describe(error: &CallError, limits: &Limits) -> String {
    match error {
        CallError::Trap(e)
            if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) =>
        {
            format!(
                "ran past its deadline of {} ms",
                limits.deadline.as_millis()
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Context, EventKind, GatewayId, Session};
    use crate::worker::poll_once;

    fn connect(client: ClientId) -> Job {
        Job::Event(Event {
            app: "app".into(),
            ctx: Context {
                client,
                remote_addr: ([127, 0, 0, 1], 1).into(),
                uid: None,
                session: Session::default(),
            },
            kind: EventKind::Connect,
        })
    }

    fn client(gateway: u32, seq: u64) -> ClientId {
        ClientId::new(GatewayId::new(gateway).expect("id"), seq).expect("id")
    }

    /// Queues as many jobs for `client` as one client may.
    async fn fill_client(inbox: &Inbox, client: ClientId) {
        for _ in 0..PER_CLIENT {
            assert!(inbox.push(client, connect(client)).await.is_ok());
        }
    }

    /// A client that has queued as many jobs as one client may in `inbox`.
    async fn client_at_its_limit(inbox: &Inbox) -> ClientId {
        let flooder = client(1, 1);
        fill_client(inbox, flooder).await;
        flooder
    }

    #[tokio::test]
    async fn a_sender_waits_for_room_and_gets_it_when_a_job_is_taken() {
        let inbox = Inbox::default();
        let client = client_at_its_limit(&inbox).await;
        let waiting = inbox.push(client, connect(client));
        tokio::pin!(waiting);
        assert!(poll_once(waiting.as_mut()).is_pending());
        assert!(matches!(inbox.pop(), Some(Next::Job(_))));
        assert!(poll_once(waiting.as_mut()).is_ready());
        assert_eq!(inbox.lock().turns.queued(client), PER_CLIENT);
    }

    #[tokio::test]
    async fn a_sender_gets_its_job_back_once_the_instance_has_ended() {
        let inbox = Inbox::default();
        let client = client_at_its_limit(&inbox).await;
        let waiting = inbox.push(client, connect(client));
        tokio::pin!(waiting);
        assert!(poll_once(waiting.as_mut()).is_pending());
        inbox.end();
        assert!(matches!(
            poll_once(waiting.as_mut()),
            std::task::Poll::Ready(Err(_))
        ));
        assert!(inbox.push(client, connect(client)).await.is_err());
    }

    /// Fills `inbox` to `QUEUE`, each client to its limit.
    async fn fill(inbox: &Inbox) {
        for seq in 1..=(QUEUE / PER_CLIENT) as u64 {
            fill_client(inbox, client(2, seq)).await;
        }
    }

    #[tokio::test]
    async fn a_freed_place_wakes_the_longest_waiting_sender_only() {
        let inbox = Inbox::default();
        fill(&inbox).await;
        let mut senders: Vec<_> = (1..=3)
            .map(|seq| client(3, seq))
            .map(|sender| Box::pin(inbox.push(sender, connect(sender))))
            .collect();
        for sender in &mut senders {
            assert!(poll_once(sender.as_mut()).is_pending());
        }
        assert!(matches!(inbox.pop(), Some(Next::Job(_))));
        let ready: Vec<bool> = senders
            .iter_mut()
            .map(|sender| poll_once(sender.as_mut()).is_ready())
            .collect();
        assert_eq!(ready, [true, false, false]);
        assert!(matches!(inbox.pop(), Some(Next::Job(_))));
        assert!(poll_once(senders[1].as_mut()).is_ready());
        assert!(poll_once(senders[2].as_mut()).is_pending());
        assert_eq!(inbox.lock().turns.len(), QUEUE);
    }

    #[tokio::test]
    async fn a_sender_waiting_for_its_client_leaves_the_free_places_to_others() {
        let inbox = Inbox::default();
        let flooder = client_at_its_limit(&inbox).await;
        let waiting = inbox.push(flooder, connect(flooder));
        tokio::pin!(waiting);
        assert!(poll_once(waiting.as_mut()).is_pending());
        fill_client(&inbox, client(1, 2)).await;
        assert_eq!(inbox.places.available_permits(), QUEUE - 2 * PER_CLIENT);
    }

    /// Many senders, small queues, one taker: every job arrives, none is stranded by a
    /// missed wake-up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_job_of_many_waiting_senders_arrives() {
        const SENDERS: u64 = 200;
        const EACH: usize = 100;
        let inbox = Arc::new(Inbox::default());
        let senders: Vec<_> = (1..=SENDERS)
            .map(|seq| {
                let inbox = inbox.clone();
                tokio::spawn(async move {
                    // Two senders per client, so both limits are met.
                    let shared = client(4, seq / 2 + 1);
                    for _ in 0..EACH {
                        assert!(inbox.push(shared, connect(shared)).await.is_ok());
                    }
                })
            })
            .collect();
        let taker = tokio::spawn({
            let inbox = inbox.clone();
            async move {
                let mut taken = 0;
                while taken < SENDERS as usize * EACH {
                    match inbox.pop() {
                        Some(Next::Job(_)) => taken += 1,
                        _ => inbox.work.notified().await,
                    }
                }
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            for sender in senders {
                sender.await.expect("sender");
            }
            taker.await.expect("taker");
        })
        .await
        .expect("a sender or the taker was stranded");
        assert_eq!(inbox.places.available_permits(), QUEUE);
    }

    /// Whether the instance task has been woken (a permit is waiting for it).
    fn woken(inbox: &Inbox) -> bool {
        let notified = inbox.work.notified();
        tokio::pin!(notified);
        poll_once(notified).is_ready()
    }

    #[tokio::test]
    async fn jobs_queued_during_an_inline_run_go_to_it_without_waking_the_task() {
        let inbox = Inbox::default();
        let (first, second) = (client(5, 1), client(5, 2));
        assert!(inbox.claim_inline());
        assert!(inbox.push(first, connect(first)).await.is_ok());
        assert!(inbox.push(second, connect(second)).await.is_ok());
        assert!(!woken(&inbox));
        assert!(inbox.next_inline(true, false).is_some());
        assert!(inbox.next_inline(true, false).is_some());
        assert!(inbox.next_inline(true, false).is_none());
        assert!(!woken(&inbox), "nothing was left for the task");
        // The run has ended: the next push wakes the task again.
        assert!(inbox.push(first, connect(first)).await.is_ok());
        assert!(woken(&inbox));
    }

    #[tokio::test]
    async fn an_inline_run_that_stops_early_leaves_the_rest_to_the_task() {
        let inbox = Inbox::default();
        let client = client(6, 1);
        assert!(inbox.claim_inline());
        assert!(inbox.push(client, connect(client)).await.is_ok());
        assert!(inbox.next_inline(false, false).is_none());
        assert!(woken(&inbox));
        assert!(matches!(inbox.pop(), Some(Next::Job(_))));
        // Nothing queued, but the last call left care (a failed instance to replace).
        assert!(inbox.claim_inline());
        assert!(inbox.next_inline(true, true).is_none());
        assert!(woken(&inbox));
    }

    #[tokio::test]
    async fn an_instance_with_jobs_queued_or_stopping_is_not_run_inline() {
        let inbox = Inbox::default();
        let client = client(7, 1);
        assert!(inbox.push(client, connect(client)).await.is_ok());
        assert!(!inbox.claim_inline(), "the queued job would be overtaken");
        assert!(matches!(inbox.pop(), Some(Next::Job(_))));
        inbox.stop();
        assert!(!inbox.claim_inline());
    }

    #[test]
    fn recycling_is_due_by_events_or_memory() {
        let never = Recycle::default();
        assert_eq!(never.due(u64::MAX, u64::MAX), None);
        let policy = Recycle {
            after_events: Some(100),
            above_memory_bytes: Some(32 << 20),
        };
        assert_eq!(policy.due(99, 32 << 20), None);
        assert!(
            policy
                .due(100, 0)
                .is_some_and(|why| why.contains("100 events"))
        );
        assert!(
            policy
                .due(1, 33 << 20)
                .is_some_and(|why| why.contains("33 MiB"))
        );
    }

    #[test]
    fn clients_spread_over_slots() {
        let gateway = GatewayId::new(0x1234_5678).expect("non-zero");
        let mut counts = [0usize; 4];
        for seq in 1..=4000 {
            let id = ClientId::new(gateway, seq).expect("valid");
            counts[slot_index(id, 4)] += 1;
        }
        assert!(
            counts.iter().all(|&n| (800..=1200).contains(&n)),
            "{counts:?}"
        );
    }
}
