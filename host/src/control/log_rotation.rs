//! A daemon's log file, rotated by size (the `file-rotate` crate): past `log_max_mib`,
//! `switchboard.log` becomes `switchboard.log.1`, older ones shift up to `log_keep` and the
//! oldest is removed. Panics are logged through it too, so none lands in a rotated-away file.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};

/// The writer of a daemon's log lines.
pub(super) type RotatingLog = Mutex<FileRotate<AppendCount>>;

/// The log file `path`, rotated past `max_mib` MiB keeping `keep` old files; `None` if
/// `max_mib` is 0 (never rotated: the daemon writes to its stderr, which is that file).
pub(super) fn open(path: &Path, max_mib: u64, keep: u32) -> Option<RotatingLog> {
    (max_mib > 0).then(|| {
        let max_bytes = usize::try_from(max_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        // What the crate would use, but private to this user.
        let mut options = std::fs::OpenOptions::new();
        options.read(true).create(true).append(true).mode(0o600);
        Mutex::new(FileRotate::new(
            path,
            AppendCount::new(keep as usize),
            // Whole lines: a rotation never splits one.
            ContentLimit::BytesSurpassed(max_bytes),
            Compression::None,
            Some(options),
        ))
    })
}

/// Sends panics to the log rather than to stderr, which still points at the first file.
pub(super) fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        tracing::error!("panic: {info}\n{backtrace}");
    }));
}
