//! Plugins in JavaScript, Python and Go: fingerprints that skip unchanged plugins, and the
//! build through `switchboard build`'s own code (`switchboard::tools::build`), with the
//! toolchains in the same per-user cache.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use switchboard::tools::build::TOOL_PINS;

pub use switchboard::tools::build::Lang;

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
    TOOL_PINS.hash(&mut h);
    Ok(format!("{:016x}", h.finish()))
}

/// Builds the non-Rust plugins `names` of language `lang` into `target/plugins/NAME.wasm`,
/// skipping those whose fingerprint matches the last build.
pub fn build(root: &Path, lang: Lang, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let builder = crate::tools::builder(root)?;
    // A JavaScript plugin names its engine in its package.json, unless one is imposed.
    let engine = builder.js_engine().map(str::to_owned);
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

    builder.prepare(lang)?;
    for (name, dir, dest, stamp, print) in todo {
        let started = Instant::now();
        let _ = fs::remove_file(&stamp);
        // The build renames into place: a watching host never sees a partial file.
        builder
            .build(lang, &dir, &dest)
            .with_context(|| format!("building the {} plugin {name}", lang.name()))?;
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
