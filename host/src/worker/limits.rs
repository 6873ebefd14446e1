//! The memory cap of one instance, which also counts what the instance uses.

use wasmtime::ResourceLimiter;

/// Most table elements per table: far above what real plugins need.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Caps each linear memory of an instance and tracks their total size.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    used: usize,
}

impl MemoryCap {
    /// A cap of `limit` bytes per linear memory.
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
        if desired > self.limit {
            // An error, not `Ok(false)`: the guest traps with this message instead of seeing
            // a failed grow it may not handle.
            wasmtime::bail!(
                "memory limit exceeded: the instance asked for {} MiB, its cap is {} MiB",
                desired >> 20,
                self.limit >> 20
            );
        }
        self.used = self.used.saturating_sub(current) + desired;
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
}
