#!/usr/bin/env bash
# forge serve on loopback with the bundled model, driven by the official openai npm package (installed
# into WORK_DIR on first use, reused after) and by curl for the error statuses.
#   run.sh FORGE_CLI WORK_DIR [SERVE OPTION...]   (e.g. --backend metal-emu)
set -euo pipefail
forge=$1
work=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"

# npm only when the installed package does not match package.json.
if ! cmp -s "$here/package.json" "$work/package.json" || [ ! -f "$work/node_modules/openai/package.json" ]; then
  cp "$here/package.json" "$work/package.json"
  if ! npm install --prefix "$work" --no-audit --no-fund --fetch-retries=1 --fetch-timeout=60000 >"$work/npm.log" 2>&1; then
    cat "$work/npm.log"
    rm -f "$work/package.json"  # so the next run tries again
    echo "FAILED: npm could not install the openai package: is the npm registry reachable? (log above)"
    exit 1
  fi
fi
cp "$here/client_test.mjs" "$work/client_test.mjs"  # beside node_modules, where its import resolves

# The server's stderr comes through a FIFO, so waiting for its listening line is a bounded blocking read.
fifo="$work/serve-$$.stderr"
rm -f "$fifo"
mkfifo "$fifo"
"$forge" serve --host 127.0.0.1 --port 0 --threads 1 --parallel 2 "$@" 2>"$fifo" &
pid=$!
exec 3<"$fifo"
stop_server() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    timeout 30 tail --pid="$pid" -f /dev/null || kill -KILL "$pid"
  fi
  rm -f "$fifo"
}
trap stop_server EXIT

port=
while IFS= read -r -t 60 -u 3 line; do
  echo "server: $line"
  if [[ $line =~ listening\ on\ http://127\.0\.0\.1:([0-9]+) ]]; then
    port=${BASH_REMATCH[1]}
    break
  fi
done
[ -n "$port" ] || { echo "FAILED: forge serve did not print its listening address"; exit 1; }
base="http://127.0.0.1:$port"
# From here the server logs a line per request: keep reading, so the FIFO never fills and blocks it.
sed 's/^/server: /' <&3 &

FORGE_URL="$base/v1" node "$work/client_test.mjs"

# expect_error STATUS METHOD PATH [curl args...]: the status and OpenAI's error object.
curl_checks=0
expect_error() {
  local want=$1 method=$2 path=$3
  shift 3
  local got
  got=$(curl -sS --max-time 30 -o "$work/body.json" -w '%{http_code}' -X "$method" "$base$path" "$@")
  if [ "$got" != "$want" ]; then
    echo "FAILED: $method $path: status $got, expected $want: $(cat "$work/body.json")"
    exit 1
  fi
  node -e '
    const e = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).error;
    for (const k of ["message", "type"]) if (typeof e[k] !== "string" || !e[k]) throw new Error("error." + k);
    for (const k of ["param", "code"]) if (!(k in e)) throw new Error("error." + k + " missing");
  ' "$work/body.json"
  echo "ok - curl $method $path -> $want $(cat "$work/body.json")"
  curl_checks=$((curl_checks + 1))
}
json=(-H 'Content-Type: application/json')
expect_error 400 POST /v1/chat/completions "${json[@]}" -d '{"messages": [{"role": "user", "content": "hi"}'
expect_error 400 POST /v1/chat/completions "${json[@]}" -d '{"model": "stories260K"}'
expect_error 400 POST /v1/chat/completions "${json[@]}" -d '{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}'
long_prompt=$(printf 'once upon a time %.0s' $(seq 400))
expect_error 400 POST /v1/completions "${json[@]}" -d "{\"prompt\": \"$long_prompt\"}"
expect_error 404 GET /v1/embeddings
expect_error 405 GET /v1/chat/completions
head -c 2000000 /dev/zero | tr '\0' ' ' >"$work/big.json"
expect_error 413 POST /v1/chat/completions "${json[@]}" --data-binary "@$work/big.json"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
while IFS= read -r -t 5 -u 3 line; do echo "server: $line"; done
[ "$status" -eq 0 ] || { echo "FAILED: forge serve exited with $status after SIGTERM"; exit 1; }
echo "curl: $curl_checks checks passed; forge serve stopped cleanly"
