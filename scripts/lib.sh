# Shared by scripts/test and benchmarks/run (sourced, from the repository root): installs what is
# missing from Debian, starts the Docker engine when none answers (and stops it again on exit),
# and makes sure the stand-in base image exists.

# ensure_commands COMMAND:PACKAGE...: installs from Debian the packages whose command is missing.
ensure_commands() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# install_dashscale [EXTRA]: dashscale from this checkout, editable, with an optional extra.
# pip's warnings are left out; pip's own exit status is returned, so a refused install (such as
# a Python that refuses system-wide installs) stops the caller instead of going on without it.
install_dashscale() {
  local spec=.
  if [ -n "${1:-}" ]; then spec=".[$1]"; fi
  python3 -m pip install -q --disable-pip-version-check -e "$spec" 2>&1 |
    { grep -v -e '^WARNING' -e 'pip as the' || true; }
  return "${PIPESTATUS[0]}"
}

started_dockerd=""
stop_started_engine() {
  if [ -n "$started_dockerd" ]; then
    echo "stopping the Docker engine this run started (pid $started_dockerd)"
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.2; done
  fi
}

# ensure_engine: starts `dockerd --bridge=none` when no engine answers; stopped again on exit.
ensure_engine() {
  trap stop_started_engine EXIT
  if ! docker info >/dev/null 2>&1; then
    echo "starting the Docker engine (no bridge: builds and containers use host networking)"
    dockerd --bridge=none --iptables=false --ip6tables=false >/tmp/dashscale-dockerd.log 2>&1 &
    started_dockerd=$!
    for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.3; done
    docker info >/dev/null 2>&1 || { tail -n 20 /tmp/dashscale-dockerd.log; exit 1; }
  fi
}

# ensure_base_image: the stand-in for python:3.x-slim, named by DASHSCALE_TEST_BASE_IMAGE.
ensure_base_image() {
  export DASHSCALE_TEST_BASE_IMAGE=${DASHSCALE_TEST_BASE_IMAGE:-dashscale-test-base:bookworm}
  scripts/base-image.sh "$DASHSCALE_TEST_BASE_IMAGE"
}
