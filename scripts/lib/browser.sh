# Sourced by scripts/swagger-ui.sh and scripts/guardian-pages.sh: headless Chromium for the
# checks in scripts/browser/. Installs Debian's chromium (with CJK fonts, so that Japanese
# in screenshots is readable) when missing, and playwright-core 1 with npm into
# target/browser (kept as a cache).
#
#   browser_install     sets browser_node_path, the NODE_PATH under which
#                       `require('playwright-core')` works; the scripts launch
#                       /usr/bin/chromium.

browser_install() {
  local root prefix
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
  fi
  prefix="${CARGO_TARGET_DIR:-$root/target}/browser"
  if [ ! -d "$prefix/node_modules/playwright-core" ]; then
    echo "== installing playwright-core into $prefix" >&2
    mkdir -p "$prefix"
    npm install --prefix "$prefix" playwright-core@1 --no-audit --no-fund --loglevel=error </dev/null
  fi
  browser_node_path="$prefix/node_modules"
}
