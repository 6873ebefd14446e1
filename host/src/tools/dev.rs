//! `switchboard dev [DIR]`: build the plugin, serve it with a server of its own (a child
//! `switchboard start` on a throwaway config, the plugin's `web/` folder served if it has
//! one), and on every saved source file rebuild it into the server's plugin folder, where the
//! server's own watcher hot-swaps it. A failed build is printed and changes nothing: the
//! running version keeps serving.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::ToolError;
use super::build::{Builder, Lang};

/// How long the folder must be quiet after a change before a rebuild starts: editors save in
/// several writes.
const QUIET: Duration = Duration::from_millis(200);

/// Whether a changed path is a source file (not build output, dependencies or editor litter).
pub fn is_source(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let mut parts = rel.components().peekable();
    while let Some(part) = parts.next() {
        let name = part.as_os_str().to_string_lossy();
        let last = parts.peek().is_none();
        if name.starts_with('.')
            || matches!(&*name, "target" | "node_modules" | "__pycache__")
            || (last && (name.ends_with(".wasm") || name.ends_with('~') || name.ends_with(".swp")))
        {
            return false;
        }
    }
    true
}

/// Runs the dev loop until Ctrl-C or SIGTERM.
pub fn run(dir: &Path, lang: Lang, addr: SocketAddr) -> Result<ExitCode, ToolError> {
    let dir = dir
        .canonicalize()
        .map_err(|e| ToolError::io(dir, "opening", e))?;
    let app = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !crate::config::is_app_name(&app) {
        return Err(ToolError::Failed(format!(
            "the folder name {app:?} cannot name an app (letters, digits, '-' and '_')"
        )));
    }
    let builder = Builder::from_env()?;
    let work = tempfile::Builder::new()
        .prefix("switchboard-dev-")
        .tempdir()
        .map_err(|e| ToolError::io(Path::new("/tmp"), "creating a folder in", e))?;
    let plugins = work.path().join("plugins");
    std::fs::create_dir(&plugins).map_err(|e| ToolError::io(&plugins, "creating", e))?;
    let out = plugins.join(format!("{app}.wasm"));
    let config = write_config(work.path(), &dir, &app, addr)?;

    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| ToolError::Failed(format!("cannot start a runtime: {e}")))?;
    runtime.block_on(async {
        let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
        let root = dir.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res {
                for path in event.paths {
                    if is_source(&root, &path) {
                        let _ = tx.send(path);
                    }
                }
            }
        })
        .map_err(|e| ToolError::Failed(format!("cannot watch {}: {e}", dir.display())))?;
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .map_err(|e| ToolError::Failed(format!("cannot watch {}: {e}", dir.display())))?;
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| ToolError::Failed(format!("cannot handle SIGTERM: {e}")))?;

        let mut server: Option<Child> = None;
        loop {
            {
                eprintln!("dev: building {} ({} plugin)", dir.display(), lang.name());
                let started = std::time::Instant::now();
                let (b, d, o) = (builder.clone(), dir.clone(), out.clone());
                let built = tokio::task::spawn_blocking(move || b.build(lang, &d, &o))
                    .await
                    .unwrap_or_else(|e| Err(ToolError::Failed(format!("the build panicked: {e}"))));
                match built {
                    Ok(()) => {
                        eprintln!(
                            "dev: built in {:.1} s{}",
                            started.elapsed().as_secs_f64(),
                            if server.is_some() { "; the server swaps it in" } else { "" }
                        );
                        if server.is_none() {
                            eprintln!("dev: serving app {app} on ws://{addr} (Ctrl-C stops)");
                            server = Some(start_server(&config)?);
                        }
                    }
                    Err(e) => eprintln!(
                        "dev: build failed: {e}{}",
                        if server.is_some() { "; the running version keeps serving" } else { "" }
                    ),
                }
            }
            tokio::select! {
                Some(path) = changes.recv() => {
                    // Let the burst of writes of one save settle, then build once.
                    let mut last = path;
                    while let Ok(Some(next)) = tokio::time::timeout(QUIET, changes.recv()).await {
                        last = next;
                    }
                    eprintln!("dev: {} changed", last.strip_prefix(&dir).unwrap_or(&last).display());
                }
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            }
        }
        if let Some(child) = server.as_mut() {
            stop_server(child);
        }
        Ok::<(), ToolError>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The server's config: one WebSocket listener for the app, the plugin's `web/` folder served
/// on it if present, every other file in the throwaway folder `work`.
fn write_config(
    work: &Path,
    dir: &Path,
    app: &str,
    addr: SocketAddr,
) -> Result<PathBuf, ToolError> {
    let web = dir.join("web");
    let static_dir = if web.is_dir() {
        format!("static_dir = {:?}\n", web.display().to_string())
    } else {
        String::new()
    };
    let text = format!(
        "[[listener]]\naddr = \"{addr}\"\nprotocol = \"websocket\"\napp = \"{app}\"\n{static_dir}\n\
         [worker]\nplugins_dir = \"plugins\"\ncache_dir = \"cache\"\ndata_dir = \"data\"\n\n\
         [run]\npid_file = \"run/switchboard.pid\"\nlog_file = \"run/switchboard.log\"\n"
    );
    let path = work.join("switchboard.toml");
    std::fs::write(&path, text).map_err(|e| ToolError::io(&path, "writing", e))?;
    Ok(path)
}

/// `switchboard start -c CONFIG`, this very binary, its log on our stderr. Its standard
/// input is a pipe only we hold: if we die, even by SIGKILL, the pipe closes and the server
/// stops by itself.
fn start_server(config: &Path) -> Result<Child, ToolError> {
    let exe = std::env::current_exe()
        .map_err(|e| ToolError::Failed(format!("cannot find this program's path: {e}")))?;
    Command::new(exe)
        .args(["start", "--stop-on-stdin-eof", "-c"])
        .arg(config)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| ToolError::Failed(format!("cannot start the server: {e}")))
}

/// Stops the server gracefully (SIGTERM: clients get a close frame), then waits for it.
fn stop_server(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_source_files_trigger_a_rebuild() {
        let root = Path::new("/p");
        assert!(is_source(root, Path::new("/p/src/lib.rs")));
        assert!(is_source(root, Path::new("/p/index.js")));
        assert!(is_source(root, Path::new("/p/web/index.html")));
        assert!(!is_source(root, Path::new("/p/target/release/x.wasm")));
        assert!(!is_source(root, Path::new("/p/p.wasm")));
        assert!(!is_source(root, Path::new("/p/node_modules/a/b.js")));
        assert!(!is_source(root, Path::new("/p/__pycache__/app.pyc")));
        assert!(!is_source(root, Path::new("/p/.git/index")));
        assert!(!is_source(root, Path::new("/p/src/.lib.rs.swp")));
        assert!(!is_source(root, Path::new("/elsewhere/lib.rs")));
    }
}
