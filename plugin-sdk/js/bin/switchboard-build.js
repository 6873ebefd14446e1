#!/usr/bin/env node
// switchboard-build: turn a JavaScript plugin folder into a Switchboard component.
//
//   switchboard-build [PLUGIN_DIR] [-o OUT.wasm] [--engine quickjs|starlingmonkey] [--wit DIR]
//
// PLUGIN_DIR (default: the current folder) holds index.js (or the "main" of its package.json),
// an ES module whose default export is the plugin's handler object or class. It may import
// "switchboard-sdk" and relative modules; everything is bundled into one module with esbuild,
// then componentized:
//   quickjs         componentize-qjs --sync (the default: small, fast to compile and to call)
//   starlingmonkey  componentize-js -d fetch-event (full standard JS: BigInt, TextEncoder, fetch
//                   through wasi:http, async handlers)
// The engine is --engine, else $SWITCHBOARD_JS_ENGINE, else the plugin's package.json
// ("switchboard": { "engine": "starlingmonkey" }), else quickjs.
// Without --wit, the WIT folder is $SWITCHBOARD_WIT or the wit/ of the repository this SDK is in.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ENGINES = ["quickjs", "starlingmonkey"];
const USAGE = "usage: switchboard-build [PLUGIN_DIR] [-o OUT.wasm] [--engine quickjs|starlingmonkey] [--wit DIR]";

function fail(message) {
  console.error(`switchboard-build: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { dir: ".", out: null, engine: process.env.SWITCHBOARD_JS_ENGINE || null, wit: null };
  let dirSet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => argv[++i] ?? fail(`${a} needs a value\n${USAGE}`);
    if (a === "-o" || a === "--out") opts.out = value();
    else if (a === "--engine") opts.engine = value();
    else if (a === "--wit") opts.wit = value();
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else if (!a.startsWith("-") && !dirSet) {
      opts.dir = a;
      dirSet = true;
    } else fail(`unexpected argument ${a}\n${USAGE}`);
  }
  opts.engine ??= engineOf(resolve(opts.dir));
  if (!ENGINES.includes(opts.engine)) fail(`unknown engine ${opts.engine}; use one of ${ENGINES.join(", ")}`);
  return opts;
}

function findWit(explicit) {
  if (explicit) return resolve(explicit);
  if (process.env.SWITCHBOARD_WIT) return resolve(process.env.SWITCHBOARD_WIT);
  for (let d = SDK_DIR; d !== dirname(d); d = dirname(d)) {
    if (existsSync(join(d, "wit", "switchboard.wit"))) return join(d, "wit");
  }
  return fail("no wit/switchboard.wit found; pass --wit DIR or set SWITCHBOARD_WIT");
}

// The plugin's package.json, or {} without one.
function packageOf(dir) {
  const pkg = join(dir, "package.json");
  if (!existsSync(pkg)) return {};
  try {
    return JSON.parse(readFileSync(pkg, "utf8"));
  } catch (e) {
    return fail(`${pkg}: ${e.message}`);
  }
}

function entryOf(dir) {
  const main = packageOf(dir).main;
  return main ? resolve(dir, main) : join(dir, "index.js");
}

// The engine the plugin asks for in its package.json, else the default.
function engineOf(dir) {
  return packageOf(dir).switchboard?.engine ?? "quickjs";
}

// The imported interfaces the SDK wraps.
const IMPORTED = ["api", "variables", "kv"];

// Each imported interface's functions, in camelCase, read from the WIT itself so a new
// function needs no second list here.
function interfacesOf(witPath) {
  const text = readFileSync(join(witPath, "switchboard.wit"), "utf8");
  const camel = (name) => name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
  const found = {};
  for (const name of IMPORTED) {
    const body = new RegExp(`^interface ${name} \\{([\\s\\S]*?)^\\}`, "m").exec(text);
    if (!body) fail(`${witPath}: no interface ${name}`);
    found[name] = [...body[1].matchAll(/^\s*([a-z][a-z0-9-]*)\s*:\s*func\b/gm)].map((m) => camel(m[1]));
  }
  return found;
}

// The module "@switchboard-internal/raw-NAME": interface NAME's raw bindings as one object.
// QuickJS exposes an interface as its module's default export; StarlingMonkey wants named
// imports (aliased, since `delete` is a keyword).
function rawModule(engine, name, fns) {
  const from = `"switchboard:plugin/${name}@0.1.0"`;
  if (engine === "quickjs") return `import raw from ${from};\nexport default raw;\n`;
  return (
    `import { ${fns.map((f, i) => `${f} as f${i}`).join(", ")} } from ${from};\n` +
    `export default { ${fns.map((f, i) => `${JSON.stringify(f)}: f${i}`).join(", ")} };\n`
  );
}

// Resolves the "@switchboard-internal/raw-*" modules the SDK imports.
function rawApiPlugin(engine, interfaces) {
  return {
    name: "switchboard-raw-api",
    setup(b) {
      b.onResolve({ filter: /^@switchboard-internal\/raw-/ }, (args) => ({ path: args.path, namespace: "switchboard" }));
      b.onLoad({ filter: /.*/, namespace: "switchboard" }, (args) => {
        const name = args.path.replace("@switchboard-internal/raw-", "");
        if (!interfaces[name]) return { errors: [{ text: `no interface ${name}` }] };
        return { contents: rawModule(engine, name, interfaces[name]), loader: "js" };
      });
    },
  };
}

export async function build({ dir, out, engine, wit }) {
  const pluginDir = resolve(dir);
  engine ??= engineOf(pluginDir);
  const entry = entryOf(pluginDir);
  if (!existsSync(entry) || !statSync(entry).isFile()) fail(`no ${entry}`);
  const output = resolve(out ?? join(pluginDir, `${basename(pluginDir)}.wasm`));
  const witPath = findWit(wit);
  const work = mkdtempSync(join(tmpdir(), "switchboard-build-"));
  try {
    // The component exports `events`, made from the plugin's default export.
    const main = join(work, "main.js");
    writeFileSync(
      main,
      `import plugin from ${JSON.stringify(entry)};\n` +
        `import { makeEvents } from "switchboard-sdk";\n` +
        `export const events = makeEvents(plugin);\n`,
    );
    const { build: esbuild } = await import("esbuild");
    const bundled = join(work, "bundle.js");
    await esbuild({
      entryPoints: [main],
      bundle: true,
      format: "esm",
      platform: "neutral",
      target: "es2020",
      outfile: bundled,
      external: ["switchboard:*", "wasi:*"],
      alias: { "switchboard-sdk": join(SDK_DIR, "src", "index.js") },
      define: { __SWITCHBOARD_ENGINE__: JSON.stringify(engine) },
      plugins: [rawApiPlugin(engine, interfacesOf(witPath))],
      logLevel: "warning",
    });
    let component;
    if (engine === "quickjs") {
      const { componentize } = await import("componentize-qjs");
      ({ component } = await componentize({
        witPath,
        world: "plugin",
        jsSource: readFileSync(bundled, "utf8"),
        jsPath: bundled,
        sync: true,
      }));
    } else {
      const { componentize } = await import("@bytecodealliance/componentize-js");
      ({ component } = await componentize({
        sourcePath: bundled,
        witPath,
        worldName: "plugin",
        // The host grants wasi:http per app (allowed_outbound_hosts) and calls no
        // incoming handler.
        disableFeatures: ["fetch-event"],
      }));
    }
    mkdirSync(dirname(output), { recursive: true });
    const tmp = join(dirname(output), `.${basename(output)}.tmp`);
    writeFileSync(tmp, component);
    renameSync(tmp, output);
    return output;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const opts = parseArgs(process.argv.slice(2));
  build(opts).then(
    (output) => console.log(`${output} (${opts.engine})`),
    (e) => fail(e?.stack ?? String(e)),
  );
}
