# shellcheck shell=bash
# Shared helpers for scripts/up, scripts/down, scripts/test and scripts/admin-token.
# Source it from a script that runs with `set -euo pipefail`.
#
# Globals (set here, callers may override before calling):
#   REPO_ROOT  repository root
#   BUILD_DIR  CMake build directory ($REPO_ROOT/build)
#   BIN_DIR    where the executables land ($BUILD_DIR/bin)
#   RUN        runtime dir for service logs/pids (the caller sets it)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="$REPO_ROOT/build"
BIN_DIR="$BUILD_DIR/bin"
RUN="${RUN:-$REPO_ROOT/.run}"

# Every service, in dependency (start) order.
# shellcheck disable=SC2034 # used by the scripts that source this file
TG_SERVICES=(tg-config tg-keyauth tg-balancer tg-adapter tg-edge)

DEB_PACKAGES=(
  build-essential cmake pkg-config g++
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libpqxx-dev libhiredis-dev rapidjson-dev libssl-dev libcurl4-openssl-dev
  libboost-dev libjwt-dev libgtest-dev libgmock-dev libbenchmark-dev libyaml-cpp-dev
  postgresql redis-server curl docker-compose wrk
  clang-16 libclang-rt-16-dev libfuzzer-16-dev llvm-16 zlib1g-dev clang-format-16
)

# ---------------------------------------------------------------- messages

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- deps/build

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Install the Debian packages that are missing (apt-get update only if needed).
ensure_deps() {
  local missing=() pkg sudo=()
  for pkg in "${DEB_PACKAGES[@]}"; do
    pkg_installed "$pkg" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0

  log "installing missing packages: ${missing[*]}"
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "not root and no sudo; install: ${missing[*]}"
    sudo=(sudo -n)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq || die "apt-get update failed"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null \
    || die "apt-get install failed for: ${missing[*]}"
}

# Configure (first time, or after a failed configure) and build with 2 jobs.
# build [TARGET...]: configure once, then build the given targets (all when none).
build() {
  if [[ ! -f $BUILD_DIR/CMakeCache.txt ]] ||
     [[ ! -f $BUILD_DIR/Makefile && ! -f $BUILD_DIR/build.ninja ]]; then
    log "configuring CMake in $BUILD_DIR"
    cmake -S "$REPO_ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      || die "CMake configure failed (see the output above)"
  fi
  local targets=()
  (($# == 0)) || targets=(--target "$@")
  log "building ${*:-everything} in $BUILD_DIR"
  cmake --build "$BUILD_DIR" -j2 "${targets[@]}" || die "build failed (see the compiler output above)"
}

# What scripts/up runs: the services and the tools it calls, not the tests
# and benchmarks (scripts/test builds those).
UP_TARGETS=("${TG_SERVICES[@]}" tg-certs tg-healthcheck tg-admin-token)

# ---------------------------------------------------------------- small utils

# wait_until TIMEOUT_SECONDS CMD...: retry CMD until it succeeds or time runs out.
wait_until() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.3
  done
}

# pid_alive PID [COMM]: the process exists, is not a zombie (and its command name matches).
pid_alive() {
  local pid=$1 comm=${2:-} stat
  [[ $pid =~ ^[0-9]+$ ]] && stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ ${stat##*') '} != Z* ]] || return 1
  [[ -z $comm ]] || [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "${comm:0:15}" ]]
}

pid_gone() { ! pid_alive "$1"; }

# stop_pid PID [TIMEOUT]: SIGTERM, wait up to TIMEOUT (10) seconds, then SIGKILL.
stop_pid() {
  local pid=$1 timeout=${2:-10}
  kill -TERM "$pid" 2>/dev/null || return 0
  if ! wait_until "$timeout" pid_gone "$pid"; then
    log "pid $pid did not stop within ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 5 pid_gone "$pid" || true
  fi
}

port_in_use() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port [EXCLUDED_PORT...]: print a random free loopback TCP port in
# 20000-32767, below Linux's ephemeral range (32768-60999), so that an outgoing
# connection made before the service binds it cannot take it meanwhile.
free_port() {
  local port i
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
    [[ " $* " == *" $port "* ]] && continue
    port_in_use "$port" || { echo "$port"; return 0; }
  done
  die "no free TCP port found"
}

# "0.0.0.0:8080" -> "127.0.0.1:8080" (an address clients can dial).
dial_addr() {
  local host=${1%:*} port=${1##*:}
  case $host in "" | 0.0.0.0 | "*" | "[::]" | "::") host=127.0.0.1 ;; esac
  echo "$host:$port"
}

# ---------------------------------------------------------------- PostgreSQL
# Layout of DIR: DIR/data (cluster), DIR/postgres.log, unix socket in DIR.
# PG_FSYNC=off makes the cluster fast and unsafe (tests only).

pg_bin_dir() {
  local d
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  [[ -x $d/initdb ]] || die "PostgreSQL binaries not found in /usr/lib/postgresql/*/bin"
  echo "$d"
}

# Run a command as the postgres system user (PostgreSQL refuses to run as root).
as_postgres() {
  if ((EUID == 0)); then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Port of the running postmaster of DATA_DIR ("" if not running).
pg_running_port() {
  local data=$1 pid
  [[ -f $data/postmaster.pid ]] || return 0
  pid=$(sed -n 1p "$data/postmaster.pid")
  pid_alive "$pid" postgres && sed -n 4p "$data/postmaster.pid"
  return 0
}

start_postgres() {
  local dir=$1 port=$2 bin data running
  bin=$(pg_bin_dir)
  data="$dir/data"
  mkdir -p "$dir"
  ((EUID == 0)) && chown postgres: "$dir"
  as_postgres test -w "$dir" ||
    die "user postgres cannot write $dir (every parent directory must be searchable by it)"

  running=$(pg_running_port "$data")
  if [[ -n $running && $running != "$port" ]]; then
    log "PostgreSQL in $dir runs on port $running, restarting on $port"
    stop_postgres "$dir"
    running=
  fi
  if [[ -z $running ]]; then
    ! port_in_use "$port" || die "port $port is already in use (PostgreSQL)"
    if [[ ! -f $data/PG_VERSION ]]; then
      log "initializing PostgreSQL cluster in $data"
      as_postgres "$bin/initdb" -D "$data" --auth=trust -U postgres -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || { tail -n 20 "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    log "starting PostgreSQL on 127.0.0.1:$port"
    as_postgres "$bin/pg_ctl" start -D "$data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k '$dir' -c fsync=${PG_FSYNC:-on}" \
      >/dev/null || { tail -n 20 "$dir/postgres.log" >&2; die "PostgreSQL did not start"; }
  fi
  wait_until 30 "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" ||
    die "PostgreSQL on port $port is not ready (see $dir/postgres.log)"

  if [[ -z $("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
             "SELECT 1 FROM pg_database WHERE datname = 'trustgate'") ]]; then
    "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -c "CREATE DATABASE trustgate" || die "could not create database trustgate"
  fi
}

stop_postgres() {
  local dir=$1 data bin pid
  data="$dir/data"
  [[ -n $(pg_running_port "$data") ]] || return 0
  bin=$(pg_bin_dir)
  log "stopping PostgreSQL ($data)"
  if ! as_postgres "$bin/pg_ctl" stop -D "$data" -m fast -w -t 20 >/dev/null 2>&1; then
    pid=$(sed -n 1p "$data/postmaster.pid" 2>/dev/null || true)
    [[ -n $pid ]] && stop_pid "$pid" 5
  fi
}

# ---------------------------------------------------------------- Redis
# Layout of DIR: DIR/redis.pid, DIR/redis.port, DIR/redis.log, data files.
# REDIS_PERSIST=yes (default) turns on appendonly; "no" disables all persistence.

redis_pid() {
  local pid
  pid=$(cat "$1/redis.pid" 2>/dev/null || true)
  pid_alive "$pid" redis-server && echo "$pid"
  return 0
}

redis_ping() {
  if command -v redis-cli >/dev/null; then
    [[ $(timeout 3 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
  else
    timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; printf 'PING\r\n' >&3; read -r l <&3; [[ \$l == +PONG* ]]"
  fi
}

start_redis() {
  local dir=$1 port=$2 persist=${REDIS_PERSIST:-yes} save=()
  mkdir -p "$dir"
  if [[ -n $(redis_pid "$dir") ]]; then
    if [[ $(cat "$dir/redis.port" 2>/dev/null) == "$port" ]] && redis_ping "$port"; then
      return 0
    fi
    stop_redis "$dir"
  fi
  ! port_in_use "$port" || die "port $port is already in use (Redis)"
  [[ $persist == yes ]] || save=(--save "")
  log "starting Redis on 127.0.0.1:$port"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --appendonly "$persist" "${save[@]}" </dev/null ||
    die "redis-server failed to start (see $dir/redis.log)"
  echo "$port" >"$dir/redis.port"
  wait_until 20 redis_ping "$port" || {
    tail -n 20 "$dir/redis.log" >&2 || true
    die "Redis on port $port is not answering"
  }
}

stop_redis() {
  local dir=$1 pid
  pid=$(redis_pid "$dir")
  [[ -n $pid ]] || return 0
  log "stopping Redis ($dir)"
  stop_pid "$pid" 10
}

# ---------------------------------------------------------------- services
# Logs go to $RUN/logs/NAME.log (previous one kept as NAME.log.1),
# the pid to $RUN/pids/NAME.pid. Configuration comes from the environment.

service_built() { [[ -x $BIN_DIR/$1 ]]; }

service_pid() {
  local pid
  pid=$(cat "$RUN/pids/$1.pid" 2>/dev/null || true)
  pid_alive "$pid" "$1" && echo "$pid"
  return 0
}

# start_service NAME [ARGS...]: start $BIN_DIR/NAME in the background, in its own session.
start_service() {
  local name=$1 log pidfile pid i
  shift
  log="$RUN/logs/$name.log" pidfile="$RUN/pids/$name.pid"
  mkdir -p "$RUN/logs" "$RUN/pids"
  [[ -f $log ]] && mv -f "$log" "$log.1"
  rm -f "$pidfile"
  log "starting $name"
  # The wrapper writes its own pid, then execs the service (so the pid is the service's).
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" "$BIN_DIR/$name" "$@" \
    </dev/null >>"$log" 2>&1 &
  # Wait until the exec happened (command name = NAME) or the process already died.
  for ((i = 0; i < 100; i++)); do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ -n $pid ]] && { pid_alive "$pid" "$name" || ! pid_alive "$pid"; }; then
      return 0
    fi
    sleep 0.1
  done
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  die "$name did not start (pid file: $pidfile)"
}

stop_service() {
  local name=$1 pid
  pid=$(service_pid "$name")
  rm -f "$RUN/pids/$name.pid"
  [[ -n $pid ]] || return 0
  log "stopping $name (pid $pid)"
  stop_pid "$pid" 10
}

# Failure report: the tail of the service's log.
service_failed() {
  local name=$1 why=$2
  log "$name $why; last lines of $RUN/logs/$name.log:"
  tail -n 30 "$RUN/logs/$name.log" >&2 2>/dev/null || true
  exit 1
}

# ensure_tls DIR: the internal gRPC certificates (tg-certs: a private CA and one
# certificate per service plus tg-operator) in DIR, created or renewed as needed
# and kept otherwise; exports TG_GRPC_TLS_DIR=DIR for the services and
# tg-healthcheck unless the caller chose TG_GRPC_TLS_DIR or TG_GRPC_INSECURE.
ensure_tls() {
  local dir=$1
  if [[ -n ${TG_GRPC_TLS_DIR:-} || ${TG_GRPC_INSECURE:-} == true ]]; then
    return 0
  fi
  [[ -x $BIN_DIR/tg-certs ]] || die "$BIN_DIR/tg-certs is not built"
  "$BIN_DIR/tg-certs" --out="$dir" >/dev/null || die "tg-certs could not write $dir"
  export TG_GRPC_TLS_DIR=$dir
}

# grpc_healthy ADDR [NAME]: gRPC health SERVING (tg-healthcheck, as tg-operator,
# expecting NAME's certificate) or, without it, the port accepts connections.
grpc_healthy() {
  local server=()
  [[ -n ${2:-} ]] && server=(--server-identity="$2")
  if [[ -x $BIN_DIR/tg-healthcheck ]]; then
    timeout 5 "$BIN_DIR/tg-healthcheck" "$1" "${server[@]}"
  else
    (exec 3<>"/dev/tcp/${1%:*}/${1##*:}")
  fi
}

http_ok() { curl -fsS --max-time 3 -o /dev/null "$1"; }

# Wait for a health check, failing fast if the service NAME died meanwhile.
_wait_service() {
  local name=$1 timeout=$2 deadline pid
  shift 2
  deadline=$((SECONDS + timeout))
  pid=$(cat "$RUN/pids/$name.pid" 2>/dev/null || true)
  until "$@" >/dev/null 2>&1; do
    pid_alive "$pid" || service_failed "$name" "exited during startup"
    ((SECONDS < deadline)) || service_failed "$name" "not healthy after ${timeout}s"
    sleep 0.5
  done
  log "$name is healthy"
}

# wait_grpc_healthy ADDR [NAME] [TIMEOUT]
wait_grpc_healthy() {
  if [[ -n ${2:-} ]]; then
    _wait_service "$2" "${3:-30}" grpc_healthy "$1" "$2"
  else
    wait_until "${3:-30}" grpc_healthy "$1"
  fi
}

# wait_http URL [NAME] [TIMEOUT]
wait_http() {
  if [[ -n ${2:-} ]]; then
    _wait_service "$2" "${3:-30}" http_ok "$1"
  else
    wait_until "${3:-30}" http_ok "$1"
  fi
}

# ---------------------------------------------------------------- env files

# load_env_defaults FILE: export KEY=VALUE lines of FILE for keys not already set.
load_env_defaults() {
  local line key
  [[ -f $1 ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}
    [[ -n ${!key+set} ]] && continue
    eval "export $key=${BASH_REMATCH[3]}"
  done <"$1"
}

# write_env FILE VAR...: write VAR=value lines (shell-quoted) to FILE, mode 600.
write_env() {
  local file=$1 var
  shift
  (
    umask 077
    for var in "$@"; do
      [[ -n ${!var+set} ]] && printf '%s=%q\n' "$var" "${!var}"
    done >"$file.tmp"
  )
  mv -f "$file.tmp" "$file"
}

random_secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
