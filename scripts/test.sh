#!/usr/bin/env bash
# The README's test command: installs what the tests need (system packages and npm dependencies)
# when missing, then runs the type check, the linter, the docs check and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

# apt_install [apt options --] PACKAGE...: installs what is missing, as root, once per call.
apt_install() {
  local options=()
  if [ "${1:-}" = "--no-install-recommends" ]; then options+=("$1"); shift; fi
  [ $# -gt 0 ] || return 0
  step "installing system packages: $*"
  if [ "$(id -u)" -ne 0 ]; then fail "run as root (or install $* yourself): apt-get install -y ${options[*]} $*"; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update"
  apt-get install -y -qq "${options[@]}" "$@" >/dev/null || fail "apt-get install -y ${options[*]} $*"
}

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
# the Redis TLS test makes its certificates with openssl
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
apt_install "${need_apt[@]}"
# The glewlwyd suite runs Debian's glewlwyd (a real OpenID provider) on a SQLite file it builds with
# sqlite3; without --no-install-recommends apt would add packages that suite never uses.
need_lean=()
command -v glewlwyd >/dev/null 2>&1 || need_lean+=(glewlwyd)
command -v sqlite3 >/dev/null 2>&1 || need_lean+=(sqlite3)
apt_install --no-install-recommends "${need_lean[@]}"
for tool in redis-server glewlwyd sqlite3 openssl wrk; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing after install"
done
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is missing after install"

step "npm ci"
npm ci --no-audit --no-fund || fail "npm ci"
# the React + Vite example (its own package.json) is built and driven by the browser tests
[ -x examples/react-vite/node_modules/.bin/vite ] || npm ci --prefix examples/react-vite --no-audit --no-fund || fail "npm ci --prefix examples/react-vite"

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
npm run docs:check || fail "README configuration or route table, or gateway.example.yaml, is out of date (npm run docs:config)"
step "tests (build, unit, e2e)"
npm test || fail "tests"
step "bench smoke"; npm run bench:smoke || fail "bench smoke"

step "end-to-end smoke on the machine's Node $machine_node"
# (the paths first: --selectProjects takes a list and would swallow them)
PATH="$machine_path" node --experimental-vm-modules node_modules/jest/bin/jest.js \
  test/e2e/config.e2e-spec.ts test/e2e/login.e2e-spec.ts test/e2e/proxy.e2e-spec.ts test/e2e/logout.e2e-spec.ts --selectProjects e2e \
  || fail "end-to-end smoke on Node $machine_node"
