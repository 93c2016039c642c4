#!/usr/bin/env bash
# Rebuild widgets/vendor/vega-interpreter.js from the npm package vega-interpreter.
#
# vega-interpreter evaluates Vega expressions without eval/new Function, so charts
# draw under a CSP with no 'unsafe-eval'. The package is an ES module that imports
# three names from 'vega-util'; the embed page loads classic scripts only, next to
# the vl-convert bundle (vega.js). This script:
#   1. downloads the package with `npm pack` (the registry's ordinary client),
#   2. replaces its `import ... from 'vega-util'` line with reads of `window.vega`,
#      falling back to copies of those three vega-util definitions when the bundle
#      does not expose them (vl-convert 1.9's bundle sets window.vega to null),
#   3. replaces its `export` line and wraps it all in an IIFE that assigns
#      `window.vegaInterpreter = { expressionInterpreter }`,
#   4. prepends the package's BSD-3-Clause license as a comment.
#
# Usage: widgets/vendor/build.sh            (from anywhere; needs npm, node, tar)
#   VEGA_INTERPRETER_VERSION=2.3.2          package version to build
#   PYTHON=.venv/bin/python                 a Python with vl_convert, for the check of
#                                           the bundle's window.vega (skipped if absent)
set -euo pipefail

VERSION="${VEGA_INTERPRETER_VERSION:-2.3.2}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="$HERE/vega-interpreter.js"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "vega-interpreter@$VERSION" >/dev/null)
tar xzf "$WORK/vega-interpreter-$VERSION.tgz" -C "$WORK"
SRC="$WORK/package/build/vega-interpreter.js"
LICENSE="$WORK/package/LICENSE"

IMPORT_LINE="import { ascending, isString, DisallowedObjectProperties } from 'vega-util';"
EXPORT_LINE="export { expression as expressionInterpreter };"
if [ "$(grep -c '^import ' "$SRC")" != 1 ] || ! grep -qxF "$IMPORT_LINE" "$SRC"; then
  echo "build.sh: $SRC does not have the one expected import line:" >&2
  grep -n '^import ' "$SRC" >&2 || true
  exit 1
fi
if [ "$(grep -c '^export ' "$SRC")" != 1 ] || ! grep -qxF "$EXPORT_LINE" "$SRC"; then
  echo "build.sh: $SRC does not have the one expected export line:" >&2
  grep -n '^export ' "$SRC" >&2 || true
  exit 1
fi

# Does the vl-convert bundle's window.vega carry the three names? (Informational:
# the built file works either way.)
if [ -x "$PYTHON" ] && "$PYTHON" -c "import vl_convert" 2>/dev/null; then
  "$PYTHON" -c "import sys, vl_convert as v; open(sys.argv[1], 'w').write(v.javascript_bundle())" \
    "$WORK/vega.js"
  node -e '(() => {
    globalThis.window = globalThis; globalThis.self = globalThis;
    require("vm").runInThisContext(require("fs").readFileSync(process.argv[1], "utf8"));
    const v = globalThis.vega;
    const names = ["ascending", "isString", "DisallowedObjectProperties"];
    const missing = names.filter((n) => !v || v[n] === undefined);
    if (missing.length) {
      console.log("build.sh: note: the vl-convert bundle'"'"'s window.vega lacks " + missing.join(", ") +
        " (window.vega is " + (v === null ? "null" : typeof v) + "); the built-in vega-util copies are used.");
    } else {
      console.log("build.sh: the vl-convert bundle'"'"'s window.vega has " + names.join(", ") + ".");
    }
  })();' "$WORK/vega.js"
else
  echo "build.sh: $PYTHON has no vl_convert; skipping the check of the bundle's window.vega" >&2
fi

{
  echo "/*! vega-interpreter $VERSION: CSP-compliant interpreter for Vega expressions."
  echo " * https://github.com/vega/vega/tree/main/packages/vega-interpreter"
  echo " * Rebuilt as a classic script by widgets/vendor/build.sh (do not edit by hand):"
  echo " * it reads ascending, isString and DisallowedObjectProperties from window.vega"
  echo " * (the vl-convert bundle) and otherwise uses copies of vega-util 2.x's definitions"
  echo " * (same authors, same license), then sets window.vegaInterpreter."
  echo " *"
  sed -e 's/\*\//* \//g' -e 's/^/ * /' -e 's/[[:space:]]*$//' "$LICENSE"
  echo " */"
  echo "(function () {"
  echo '"use strict";'
  cat <<'JS'
const vegaGlobal = (typeof window !== "undefined" && window.vega) || {};
const ascending = typeof vegaGlobal.ascending === "function" ? vegaGlobal.ascending
  : function ascending(u, v) {
    return (u < v || u == null) && v != null ? -1
      : (u > v || v == null) && u != null ? 1
      : ((v = v instanceof Date ? +v : v), (u = u instanceof Date ? +u : u)) !== u && v === v ? -1
      : v !== v && u === u ? 1
      : 0;
  };
const isString = typeof vegaGlobal.isString === "function" ? vegaGlobal.isString
  : function isString(_) { return typeof _ === "string"; };
const DisallowedObjectProperties = vegaGlobal.DisallowedObjectProperties instanceof Set
  ? vegaGlobal.DisallowedObjectProperties
  : new Set([
    ...Object.getOwnPropertyNames(Object.prototype)
      .filter((name) => typeof Object.prototype[name] === "function"),
    "__proto__",
    "then",
  ]);
JS
  grep -vxF -e "$IMPORT_LINE" -e "$EXPORT_LINE" "$SRC" | sed -e '/^\/\/# sourceMappingURL=/d'
  echo "window.vegaInterpreter = { expressionInterpreter: expression };"
  echo "})();"
} > "$WORK/out.js"

node --check "$WORK/out.js"
cp "$WORK/out.js" "$OUT"
echo "build.sh: wrote $OUT ($(wc -c < "$OUT") bytes)"
