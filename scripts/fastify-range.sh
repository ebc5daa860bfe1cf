#!/usr/bin/env bash
# Runs scripts/fastify-smoke.mjs against each Fastify version given (default: the oldest the
# server's peer range allows, 5.0.0, and the newest 5.x), each in a fresh npm folder outside the
# workspace, with the packages packed as users get them. Needs the packages built
# (`pnpm build`) and the npm registry or npm's cache. PARLEY_FASTIFY_WEBSOCKET pins
# @fastify/websocket (an npm override), e.g. 11.3.0, the oldest the server's range allows.
#   bash scripts/fastify-range.sh 5.0.0 5
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(5.0.0 5)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for pkg in protocol server client; do
  (cd "$root/packages/$pkg" && npx -y pnpm@10 pack --pack-destination "$scratch" >/dev/null)
done
for version in "${versions[@]}"; do
  dir="$scratch/fastify-$version"
  mkdir "$dir"
  if [ -n "${PARLEY_FASTIFY_WEBSOCKET:-}" ]; then
    printf '{"private":true,"overrides":{"@fastify/websocket":"%s"}}\n' "$PARLEY_FASTIFY_WEBSOCKET" >"$dir/package.json"
  else
    printf '{"private":true}\n' >"$dir/package.json"
  fi
  (cd "$dir" && npm i --no-audit --no-fund --loglevel=error "fastify@$version" "$scratch"/parley-*.tgz >/dev/null)
  cp "$root/scripts/fastify-smoke.mjs" "$dir/"
  (cd "$dir" && npm ls --depth=1 @fastify/websocket | grep -o "@fastify/websocket@[^ ]*" | head -1 && node fastify-smoke.mjs)
done
