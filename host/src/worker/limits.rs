//! The resource cap of one instance: its memory, summed over all its linear memories, and
//! how many memories, tables and core instances it may create.

use wasmtime::ResourceLimiter;

/// Most table elements per table: far above what real plugins need.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Most core instances one component instance may hold (language runtimes use a handful).
const MAX_INSTANCES: usize = 64;

/// Most linear memories per instance.
const MAX_MEMORIES: usize = 16;

/// Most tables per instance.
const MAX_TABLES: usize = 64;

/// Caps an instance's linear memories, together, and tracks their total size.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    used: usize,
}

impl MemoryCap {
    /// A cap of `limit` bytes over every linear memory of the instance.
    pub fn new(limit: usize) -> Self {
        Self { limit, used: 0 }
    }

    /// Bytes of linear memory in use.
    pub fn used(&self) -> usize {
        self.used
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            // An error, not `Ok(false)`: the guest traps with this message instead of seeing
            // a failed grow it may not handle.
            wasmtime::bail!(
                "memory limit exceeded: the instance asked for {} MiB in all, its cap is {} MiB",
                total >> 20,
                self.limit >> 20
            );
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_within_the_cap_is_counted_and_beyond_it_is_an_error() {
        let mut cap = MemoryCap::new(4 << 20);
        assert!(cap.memory_growing(0, 1 << 20, None).expect("fits"));
        assert!(cap.memory_growing(1 << 20, 3 << 20, None).expect("fits"));
        assert_eq!(cap.used(), 3 << 20);
        let err = cap
            .memory_growing(3 << 20, 5 << 20, None)
            .expect_err("too big");
        assert!(err.to_string().contains("memory limit exceeded"), "{err}");
        assert_eq!(cap.used(), 3 << 20);
    }

    #[test]
    fn the_cap_is_for_all_memories_of_the_instance_together() {
        let mut cap = MemoryCap::new(4 << 20);
        // Two memories of 2 MiB each fill the cap...
        assert!(cap.memory_growing(0, 2 << 20, None).expect("first"));
        assert!(cap.memory_growing(0, 2 << 20, None).expect("second"));
        assert_eq!(cap.used(), 4 << 20);
        // ...so a third cannot even start, though it alone would fit.
        let err = cap.memory_growing(0, 1 << 20, None).expect_err("over");
        assert!(err.to_string().contains("5 MiB in all"), "{err}");
    }
}
