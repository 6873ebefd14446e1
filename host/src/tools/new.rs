//! `switchboard new NAME --lang L [--template T]`: a plugin project that builds as it is.
//!
//! The echo and chat templates are the repository's example plugins themselves (included at
//! compile time), so a template can never drift from an example the tests exercise. The SDK is
//! referenced by the absolute path of the checkout `switchboard` was built from (or
//! `$SWITCHBOARD_SOURCE`), written at `new` time.

use std::fs;
use std::path::{Path, PathBuf};

use super::ToolError;
use super::build::Lang;

/// What a new project starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// Sends every message back to its sender.
    Echo,
    /// Rooms, nicknames and private messages (the chat example, with its web page).
    Chat,
    /// Every handler empty.
    Empty,
}

impl Template {
    /// Parses a `--template` value.
    pub fn parse(s: &str) -> Result<Template, ToolError> {
        match s {
            "echo" => Ok(Template::Echo),
            "chat" => Ok(Template::Chat),
            "empty" => Ok(Template::Empty),
            _ => Err(ToolError::Failed(format!(
                "unknown template {s:?}: use echo, chat or empty"
            ))),
        }
    }
}

/// One file of a project: its path inside the project and its text.
type File = (&'static str, String);

/// The files of a new project `name` of language `lang` from `template`, with the SDKs of
/// the checkout at `source`.
pub fn files(name: &str, lang: Lang, template: Template, source: &Path) -> Vec<File> {
    let sdk = source.join(lang.sdk()).display().to_string();
    let mut files: Vec<File> = Vec::new();
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml", rust_manifest(name, &sdk)));
            match template {
                Template::Echo => {
                    files.push((
                        "src/lib.rs",
                        include_str!("../../../plugins/echo/src/lib.rs").into(),
                    ));
                }
                Template::Chat => {
                    files.push((
                        "src/lib.rs",
                        include_str!("../../../plugins/chat/src/lib.rs").into(),
                    ));
                    files.push((
                        "src/history.rs",
                        include_str!("../../../plugins/chat/src/history.rs").into(),
                    ));
                }
                Template::Empty => files.push(("src/lib.rs", EMPTY_RUST.into())),
            }
        }
        Lang::Js => {
            files.push(("package.json", js_manifest(name)));
            let main = match template {
                Template::Echo => include_str!("../../../plugins/echo-js/index.js"),
                Template::Chat => include_str!("../../../plugins/chat-js/index.js"),
                Template::Empty => EMPTY_JS,
            };
            files.push(("index.js", main.into()));
        }
        Lang::Python => {
            files.push(("pyproject.toml", python_manifest(name)));
            let main = match template {
                Template::Echo => include_str!("../../../plugins/echo-py/app.py"),
                Template::Chat => include_str!("../../../plugins/chat-py/app.py"),
                Template::Empty => EMPTY_PYTHON,
            };
            files.push(("app.py", main.into()));
        }
        Lang::Go => {
            files.push(("go.mod", go_manifest(name, &sdk)));
            let main = match template {
                Template::Echo => include_str!("../../../plugins/echo-go/main.go"),
                Template::Chat => include_str!("../../../plugins/chat-go/main.go"),
                Template::Empty => EMPTY_GO,
            };
            files.push(("main.go", main.into()));
        }
    }
    if template == Template::Chat {
        files.push((
            "web/index.html",
            include_str!("../../../plugins/chat/web/index.html").into(),
        ));
    }
    files.push((".gitignore", GITIGNORE.into()));
    files.push(("README.md", readme(name, lang, &sdk)));
    files
}

/// Writes a new project `name` into `parent/name`, which must not exist yet.
pub fn create(
    parent: &Path,
    name: &str,
    lang: Lang,
    template: Template,
    source: &Path,
) -> Result<PathBuf, ToolError> {
    if !crate::config::is_app_name(name) {
        return Err(ToolError::Failed(format!(
            "{name:?} cannot name a plugin: use letters, digits, '-' and '_' (the file {name}.wasm \
             serves the app {name})"
        )));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ToolError::Failed(format!(
            "{} exists already: pick another name or remove it",
            dir.display()
        )));
    }
    for (path, text) in files(name, lang, template, source) {
        let dest = dir.join(path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| ToolError::io(parent, "creating", e))?;
        }
        fs::write(&dest, text).map_err(|e| ToolError::io(&dest, "writing", e))?;
    }
    Ok(dir)
}

fn rust_manifest(name: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
# The Switchboard checkout `switchboard new` came from; a git location works as well:
# switchboard-sdk = {{ git = "https://…/switchboard", package = "switchboard-sdk" }}
switchboard-sdk = {{ path = {sdk:?} }}

# Handlers may return `Result<(), E>` where the `Plugin` trait says `impl Outcome`: the SDK's
# error policy, not an accidental refinement.
[lints.rust]
refining_impl_trait = "allow"

[profile.release]
opt-level = "s"
strip = true

# A project of its own, even inside another workspace's folder.
[workspace]
"#
    )
}

fn js_manifest(name: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "main": "index.js",
  "scripts": {{
    "build": "switchboard build .",
    "dev": "switchboard dev ."
  }}
}}
"#
    )
}

fn python_manifest(name: &str) -> String {
    format!(
        r#"[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["switchboard-plugin"]

[tool.switchboard]
module = "app"
"#
    )
}

fn go_manifest(name: &str, sdk: &str) -> String {
    format!(
        "module example.com/{name}\n\ngo 1.27\n\nrequire switchboard.dev/sdk v0.0.0\n\n\
         // The Go SDK of the Switchboard checkout `switchboard new` came from.\n\
         replace switchboard.dev/sdk => {sdk}\n"
    )
}

fn readme(name: &str, lang: Lang, sdk: &str) -> String {
    format!(
        "# {name}\n\nA Switchboard plugin in {lang}.\n\n\
         ```sh\n\
         switchboard dev              # build, serve on ws://127.0.0.1:8080, rebuild and hot-swap on save\n\
         switchboard build            # write {name}.wasm\n\
         switchboard check {name}.wasm # would a server accept it? (exit 0 or 1, for CI)\n\
         ```\n\n\
         Deploy: copy `{name}.wasm` into a server's plugin folder (it serves the app `{name}`).\n\n\
         The SDK is the one of the Switchboard checkout at `{sdk}` (an absolute path written by \
         `switchboard new`); if that checkout moves, update the path in this project's manifest.\n",
        lang = lang.name(),
    )
}

const GITIGNORE: &str = "/target\n*.wasm\nnode_modules/\n__pycache__/\n";

const EMPTY_RUST: &str = r#"//! A Switchboard plugin: fill in the handlers you need and delete the others (a handler
//! left out does nothing, and the host stops sending its event).

use switchboard_sdk::{Context, Message, Plugin, export};

#[derive(Default)]
struct App;

impl Plugin for App {
    fn on_connect(&mut self, _ctx: &Context) {}

    fn on_message(&mut self, _ctx: &Context, _message: Message) {}

    fn on_close(&mut self, _ctx: &Context, _bound: switchboard_sdk::Bound) {}
}

export!(App);
"#;

const EMPTY_JS: &str = r#"// A Switchboard plugin: fill in the handlers you need and delete the others (a handler
// left out does nothing, and the host stops sending its event).
import { definePlugin } from "switchboard-sdk";

export default definePlugin({
  onConnect(ctx) {},
  onMessage(ctx, message) {},
  onClose(ctx, bound) {},
});
"#;

const EMPTY_PYTHON: &str = r#""""A Switchboard plugin: fill in the handlers you need and delete the others (a handler
left out does nothing, and the host stops sending its event)."""

import switchboard_plugin as sb


class App(sb.Plugin):
    def on_connect(self, ctx: sb.Context) -> None:
        pass

    def on_message(self, ctx: sb.Context, message: sb.Message) -> None:
        pass


Events = sb.export(App)
"#;

const EMPTY_GO: &str = r#"// A Switchboard plugin: fill in the handlers you need and delete the others (a handler
// left out does nothing, and the host stops sending its event).
package main

import sb "switchboard.dev/sdk"

// App is the plugin.
type App struct{ sb.BaseHandler }

// OnMessage handles one message of a client. A returned error is logged at warn by the SDK
// and the event ends normally.
func (App) OnMessage(ctx *sb.Context, msg sb.Message) error { return nil }

func init() { sb.Register(App{}) }

func main() {}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_project_has_a_readme_and_a_gitignore() {
        for lang in Lang::ALL {
            for template in [Template::Echo, Template::Chat, Template::Empty] {
                let dir = tempfile::tempdir().expect("tempdir");
                let made =
                    create(dir.path(), "hello", lang, template, Path::new("/sb")).expect("created");
                assert!(made.join("README.md").is_file(), "{lang:?} {template:?}");
                assert!(made.join(".gitignore").is_file(), "{lang:?} {template:?}");
                assert_eq!(Lang::detect(&made), Some(lang), "{template:?}");
            }
        }
    }

    #[test]
    fn the_sdk_is_referenced_by_absolute_path() {
        let files = files("hello", Lang::Go, Template::Echo, Path::new("/sb"));
        let (_, gomod) = files.iter().find(|(p, _)| *p == "go.mod").expect("go.mod");
        assert!(gomod.contains("=> /sb/plugin-sdk/go"), "{gomod}");
    }

    #[test]
    fn bad_names_and_existing_folders_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = create(
            dir.path(),
            "a b",
            Lang::Rust,
            Template::Echo,
            Path::new("/sb"),
        );
        assert!(e.is_err());
        fs::create_dir(dir.path().join("taken")).expect("mkdir");
        let e = create(
            dir.path(),
            "taken",
            Lang::Rust,
            Template::Echo,
            Path::new("/sb"),
        )
        .expect_err("refused");
        assert!(e.to_string().contains("exists already"), "{e}");
    }
}
