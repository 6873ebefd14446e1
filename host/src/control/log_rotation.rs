//! A daemon's log file is rotated by size: past `log_max_mib`, `switchboard.log` becomes
//! `switchboard.log.1` (the older ones shift up to `log_keep`, the oldest is removed) and a
//! new file takes its place as the process's stderr, so log lines and panics alike go on.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the file's size is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The rotation of one log file.
#[derive(Clone, Debug)]
pub(super) struct Rotation {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
}

impl Rotation {
    /// Rotates `path` past `max_mib` MiB, keeping `keep` old files; `None` if `max_mib` is 0.
    pub(super) fn new(path: &Path, max_mib: u64, keep: u32) -> Option<Self> {
        (max_mib > 0).then(|| Self {
            path: path.to_owned(),
            max_bytes: max_mib.saturating_mul(1 << 20),
            keep,
        })
    }

    /// Checks the size every second and rotates when it is past the limit, until aborted.
    pub(super) async fn run(self) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            tick.tick().await;
            let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
            if size > self.max_bytes
                && let Err(e) = self.rotate()
            {
                tracing::error!(path = %self.path.display(), "cannot rotate the log: {e}");
            }
        }
    }

    /// The name of the `n`th old file.
    fn old(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// The names old files move through: (from, to), oldest first.
    fn shifts(&self) -> Vec<(PathBuf, PathBuf)> {
        let mut moves: Vec<(PathBuf, PathBuf)> = (1..self.keep)
            .rev()
            .map(|n| (self.old(n), self.old(n + 1)))
            .collect();
        if self.keep > 0 {
            moves.push((self.path.clone(), self.old(1)));
        }
        moves
    }

    fn rotate(&self) -> std::io::Result<()> {
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(self.old(self.keep));
            for (from, to) in self.shifts() {
                if from.exists() {
                    std::fs::rename(&from, &to)?;
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        rustix::stdio::dup2_stderr(&file)?;
        tracing::info!("log rotated: older lines are in {}", self.old(1).display());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_files_shift_up_and_the_oldest_goes() {
        let rotation = Rotation::new(Path::new("run/sb.log"), 1, 3).expect("on");
        let names: Vec<(String, String)> = rotation
            .shifts()
            .into_iter()
            .map(|(a, b)| (a.display().to_string(), b.display().to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("run/sb.log.2".into(), "run/sb.log.3".into()),
                ("run/sb.log.1".into(), "run/sb.log.2".into()),
                ("run/sb.log".into(), "run/sb.log.1".into()),
            ]
        );
        assert!(Rotation::new(Path::new("x"), 0, 3).is_none(), "0 = never");
    }
}
