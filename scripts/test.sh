#!/usr/bin/env bash
# The README's test command: installs what the tests need (system packages and npm dependencies)
# when missing, then runs the type check, the linter, the docs check and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
# the Redis TLS test makes its certificates with openssl
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing system packages: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then fail "run as root (or install ${need_apt[*]} yourself): apt-get install -y ${need_apt[*]}"; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update"
  apt-get install -y -qq "${need_apt[@]}" >/dev/null || fail "apt-get install -y ${need_apt[*]}"
fi
command -v redis-server >/dev/null 2>&1 || fail "redis-server is missing after install"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is missing after install"
# The glewlwyd suite runs Debian's glewlwyd (a real OpenID provider) on a SQLite file it builds with
# sqlite3; without --no-install-recommends apt would add packages that suite never uses.
need_lean=()
command -v glewlwyd >/dev/null 2>&1 || need_lean+=(glewlwyd)
command -v sqlite3 >/dev/null 2>&1 || need_lean+=(sqlite3)
if [ ${#need_lean[@]} -gt 0 ]; then
  step "installing system packages: ${need_lean[*]}"
  if [ "$(id -u)" -ne 0 ]; then fail "run as root (or install ${need_lean[*]} yourself): apt-get install -y --no-install-recommends ${need_lean[*]}"; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update"
  apt-get install -y -qq --no-install-recommends "${need_lean[@]}" >/dev/null || fail "apt-get install -y --no-install-recommends ${need_lean[*]}"
fi
command -v glewlwyd >/dev/null 2>&1 || fail "glewlwyd is missing after install"
command -v sqlite3 >/dev/null 2>&1 || fail "sqlite3 is missing after install"

step "npm ci"
npm ci --no-audit --no-fund || fail "npm ci"

# The suite runs on the supported LTS the image ships (Node 24), taken from the npm registry as a
# package into .tools/ (the `node` wrapper package relies on an install script npm may skip); the
# machine's own Node (20.19+, what `engines` allows) runs an end-to-end smoke at the end.
NODE_LTS_MAJOR=24
case "$(uname -m)" in
  x86_64) node_arch=x64 ;;
  aarch64 | arm64) node_arch=arm64 ;;
  *) fail "no Node $NODE_LTS_MAJOR package for $(uname -m)" ;;
esac
lts_dir=".tools/node$NODE_LTS_MAJOR"
lts_bin="$PWD/$lts_dir/node_modules/node-linux-$node_arch/bin"
if [ "$("$lts_bin/node" --version 2>/dev/null | cut -d. -f1)" != "v$NODE_LTS_MAJOR" ]; then
  step "installing Node $NODE_LTS_MAJOR LTS into $lts_dir"
  npm install --prefix "$lts_dir" --no-save --no-audit --no-fund --no-package-lock "node-linux-$node_arch@$NODE_LTS_MAJOR" || fail "npm install node-linux-$node_arch@$NODE_LTS_MAJOR"
fi
machine_path="$PATH"
machine_node="$(node --version)"
export PATH="$lts_bin:$PATH"
step "running on Node $(node --version) (machine: $machine_node)"

step "typecheck"
npm run typecheck || fail "typecheck (tsc --noEmit)"
step "lint"
npm run lint || fail "lint (eslint, zero warnings)"
step "dockerfilelint"
npx --no-install dockerfilelint Dockerfile || fail "dockerfilelint Dockerfile"
step "docs check"
npm run docs:check || fail "README configuration table is out of date (npm run docs:config)"
step "tests (build, unit, e2e)"
npm test || fail "tests"
step "bench smoke"; npm run bench:smoke || fail "bench smoke"

step "end-to-end smoke on the machine's Node $machine_node"
PATH="$machine_path" node --experimental-vm-modules node_modules/jest/bin/jest.js --selectProjects e2e \
  test/e2e/config.e2e-spec.ts test/e2e/login.e2e-spec.ts test/e2e/proxy.e2e-spec.ts test/e2e/logout.e2e-spec.ts \
  || fail "end-to-end smoke on Node $machine_node"
