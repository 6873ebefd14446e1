#!/usr/bin/env bash
# Regenerates internal/bindings from ../../wit with wit-bindgen-cli 0.63 (`cargo xtask
# go-bindings` installs it and runs this). The generated code imports the wit runtime and
# types packages from internal/wit (vendored from the wit-bindgen-go crate, whose
# cabi_realloc is replaced by a GC-free arena: see internal/wit/runtime/runtime.go).
# internal/bindings/exports/export_switchboard_plugin_events is ours, not generated.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wit_bindgen="${WIT_BINDGEN:-wit-bindgen}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$wit_bindgen" go --world plugin-http --pkg-name switchboard.dev/sdk/internal/bindings \
    --format=false --quiet --out-dir "$tmp" "$here/../../wit"
rm -rf "$here/internal/bindings/imports" "$here/internal/bindings/exports/wit_exports"
mkdir -p "$here/internal/bindings/exports"
cp -r "$tmp/imports" "$here/internal/bindings/imports"
cp -r "$tmp/exports/wit_exports" "$here/internal/bindings/exports/wit_exports"
find "$here/internal/bindings" -name '*.go' -exec sed -i \
    -e 's#"go.bytecodealliance.org/pkg/wit/#"switchboard.dev/sdk/internal/wit/#' {} +
if command -v "${GO:-go}" >/dev/null; then (cd "$here" && "${GO:-go}" fmt ./internal/bindings/... >/dev/null); fi
echo "regenerated $here/internal/bindings"
