# Shared by the bench scripts: source it after `cd` to the repository root.

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits (at most 60 s) until URL answers anything over HTTP.
wait_http() { # url
  for _ in $(seq 1 120); do curl -s -o /dev/null "$1" && return 0; sleep 0.5; done
  echo "$(basename "$0"): $1 did not answer" >&2
  exit 1
}

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# Builds the bench target NAME (a `[[bench]]` of Cargo.toml) and prints its executable's path.
# CALLVAULT_BENCH_PROFILE (e.g. `dev`) builds it with another profile than `bench`.
bench_executable() { # name
  local profile=(${CALLVAULT_BENCH_PROFILE:+--profile "$CALLVAULT_BENCH_PROFILE"})
  cargo bench "${profile[@]}" --bench "$1" --no-run >&2
  cargo bench "${profile[@]}" --bench "$1" --no-run --message-format=json 2>/dev/null | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}
