//! The threads that run plugin code: a runtime of their own, apart from the one that serves
//! sockets, so a plugin computing for its whole deadline never delays an accept, a read, a
//! write or a heartbeat for long (short calls of an idle instance run on the socket thread
//! that dispatched them, and move here at their second epoch tick: see `pool`). Guests also
//! yield at every epoch tick (see `instance`), so plugins of different apps take turns on
//! these threads instead of waiting for each other's events.

use tokio::runtime::{Builder, Handle, Runtime};

/// The plugin threads; dropping them stops whatever still runs there.
pub struct GuestThreads {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl GuestThreads {
    /// Starts `threads` threads named `plugin-N`.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name_fn(|| {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                format!("plugin-{}", NEXT.fetch_add(1, Ordering::Relaxed))
            })
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Self {
            runtime: Some(runtime),
            handle,
        })
    }

    /// Where plugin tasks are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        // A runtime may not be dropped from async code (the host is usually dropped there);
        // shutting down in the background never blocks.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
