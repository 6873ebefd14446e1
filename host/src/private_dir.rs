//! Folders the host trusts with what others must not touch: the run folder (pid file,
//! control socket) and the compile cache (native code it maps). Created 0700; refused when
//! another user owns them or may write them, because whoever can write there can take over
//! the server.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why a folder or file is not private to this process's user.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    /// It could not be created or examined.
    #[error("{path}: {source}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another user owns it.
    #[error(
        "{path} belongs to uid {owner}, not to this process's uid {me}: refusing to use it \
         (chown it, or choose another folder)"
    )]
    NotOurs {
        /// The folder or file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        me: u32,
    },
    /// Its group or others may write it.
    #[error(
        "{path} is writable by group or others (mode {mode:o}): refusing to use it \
         (chmod go-w it)"
    )]
    Writable {
        /// The folder or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Creates `dir` (and missing parents) with mode 0700 if needed, then checks it as [`check`].
pub fn create(dir: &Path) -> Result<(), PrivateDirError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PrivateDirError::Io {
            path: dir.to_owned(),
            source,
        })?;
    check(dir)
}

/// Whether `path` could only have been written by this user: owned by it, and neither its
/// group nor others may write it.
pub fn check(path: &Path) -> Result<(), PrivateDirError> {
    let meta = std::fs::metadata(path).map_err(|source| PrivateDirError::Io {
        path: path.to_owned(),
        source,
    })?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(PrivateDirError::NotOurs {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(PrivateDirError::Writable {
            path: path.to_owned(),
            mode: meta.mode() & 0o777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_created_folder_is_0700_and_only_what_this_user_alone_can_write_passes() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("a/b");
        create(&dir).expect("created");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        // A folder made before, without group or other write, is accepted as it is.
        chmod(&dir, 0o755);
        create(&dir).expect("accepted");
        let file = dir.join("x");
        std::fs::write(&file, b"x").expect("write");
        chmod(&file, 0o600);
        check(&file).expect("private file");
        chmod(&file, 0o666);
        let e = check(&file).expect_err("others may write it").to_string();
        assert!(e.contains("writable by group or others (mode 666)"), "{e}");
        chmod(&dir, 0o777);
        let e = create(&dir).expect_err("others may write it").to_string();
        assert!(e.contains("mode 777") && e.contains("chmod go-w"), "{e}");
    }

    #[test]
    fn a_folder_of_another_user_is_refused() {
        let root = tempfile::tempdir().expect("temp dir");
        let me = rustix::process::geteuid().as_raw();
        if me != 0 {
            // Only root can give a folder away; CI runs as root.
            assert!(std::env::var_os("CI").is_none(), "CI must run this as root");
            eprintln!("skipped: giving a folder to another user needs root");
            return;
        }
        std::os::unix::fs::chown(root.path(), Some(65534), None).expect("chown");
        let e = create(root.path()).expect_err("not ours").to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
    }
}
