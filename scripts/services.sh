#!/usr/bin/env bash
# Local services for duban's development and CI: Kafka (KRaft, single node) and ClickHouse.
#
#   scripts/services.sh start|stop|status|restart [kafka] [clickhouse]   (no name = kafka)
#
# Everything lives in <repo>/.services/ (git-ignored):
#   .services/kafka/<version>/libs/   broker + tools jars, fetched once with mvn (~/.m2 caches too)
#   .services/kafka/server.properties rendered from scripts/kafka/server.properties.in
#   .services/kafka/data/             log dirs; wiped and re-formatted on every start from stopped
#   .services/kafka/logs/             server.log, state-change.log, kafka.out (stdout/stderr)
#   .services/kafka/kafka.pid
#   .services/clickhouse/             config.xml, users.xml, data/, tmp/, logs/, clickhouse.pid
#                                     (ClickHouse from Debian's apt packages, installed if missing)
# Previous logs are kept one generation in logs.prev/.
#
# Exit codes: 0 ok; 1 error; 2 usage; status: 3 when any named service is stopped.
#
# Environment:
#   KAFKA_VERSION          Kafka release fetched from Maven Central (default 4.4.0)
#   KAFKA_PORT             PLAINTEXT listener port on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener port (default KAFKA_PORT+1)
#   KAFKA_HEAP_OPTS        JVM heap (default "-Xms256m -Xmx1G")
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer requests (default 90)
#   KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL (default 30)
#   KAFKA_KEEP_DATA=1      keep .services/kafka/data across restarts (default: fresh each start)
#   KAFKA_INTERNAL_PARTITIONS  partitions of __consumer_offsets / __transaction_state (default 1)
#   LOG4J_VERSION          log4j2 backend version fetched with Kafka (default 2.24.3)
#   CLICKHOUSE_HTTP_PORT / CLICKHOUSE_TCP_PORT (defaults 8123 / 9000)
#   CLICKHOUSE_START_TIMEOUT (default 60)
#   CLICKHOUSE_KEEP_DATA=1 keep .services/clickhouse/data across restarts (default: fresh each start)
#   DUBAN_SERVICES_DIR     alternative state folder (default <repo>/.services)
#
# Helpers (used by the manual checks and available to developers):
#   scripts/services.sh kafka-class CLASS ARGS...   run a Java class from the fetched Kafka jars,
#       e.g. scripts/services.sh kafka-class org.apache.kafka.tools.TopicCommand \
#              --bootstrap-server 127.0.0.1:9092 --list
#   scripts/services.sh env                         print the resolved settings
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS="$ROOT/scripts"
SERVICES_DIR="${DUBAN_SERVICES_DIR:-$ROOT/.services}"

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1G}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_KEEP_DATA="${KAFKA_KEEP_DATA:-0}"
KAFKA_INTERNAL_PARTITIONS="${KAFKA_INTERNAL_PARTITIONS:-1}"
LOG4J_VERSION="${LOG4J_VERSION:-2.24.3}"
MVN_DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

KAFKA_HOME="$SERVICES_DIR/kafka"
KAFKA_DIST="$KAFKA_HOME/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_DIST/libs"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_LOGS="$KAFKA_HOME/logs"
KAFKA_CONF="$KAFKA_HOME/server.properties"
KAFKA_PID="$KAFKA_HOME/kafka.pid"

CH_HOME="$SERVICES_DIR/clickhouse"
CH_PID="$CH_HOME/clickhouse.pid"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
CLICKHOUSE_START_TIMEOUT="${CLICKHOUSE_START_TIMEOUT:-60}"
CLICKHOUSE_STOP_TIMEOUT="${CLICKHOUSE_STOP_TIMEOUT:-30}"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,4p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive PIDFILE PATTERN: true when PIDFILE names a live process whose command line
# contains PATTERN (guards against a recycled pid).
pid_alive() {
  local pidfile="$1" pattern="$2" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(tr -dc '0-9' <"$pidfile")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# wait_started NAME WHAT PID PIDFILE PATTERN T0 TIMEOUT READY DUMP NOT_READY: poll READY until
# it succeeds. If PID exits first, or TIMEOUT seconds pass since T0, show its logs with DUMP,
# stop it (PIDFILE, PATTERN as for stop_pid) and die saying WHAT exited or NOT_READY.
wait_started() {
  local name=$1 what=$2 pid=$3 pidfile=$4 pattern=$5 t0=$6 timeout=$7 ready=$8 dump=$9
  local not_ready=${10}
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      "$dump"
      die "$name: $what exited during startup"
    fi
    if "$ready"; then
      return 0
    fi
    if awk -v s="$t0" -v e="$(now)" -v t="$timeout" 'BEGIN { exit !(e - s > t) }'; then
      "$dump"
      stop_pid "$name" "$pidfile" "$pattern" 10
      die "$name: $not_ready within ${timeout}s"
    fi
    sleep 0.5
  done
}

# stop_pid NAME PIDFILE PATTERN TIMEOUT: SIGTERM, wait, SIGKILL; removes the pid file.
stop_pid() {
  local name="$1" pidfile="$2" pattern="$3" timeout="$4" pid i
  if ! pid_alive "$pidfile" "$pattern"; then
    if [[ -f "$pidfile" ]]; then
      log "$name: not running (removing stale pid file)"
      rm -f "$pidfile"
    else
      log "$name: not running"
    fi
    return 0
  fi
  pid="$(tr -dc '0-9' <"$pidfile")"
  log "$name: stopping pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still alive after ${timeout}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}

# Serialise start/stop of one service between concurrent invocations. The lock is fd 9, which
# the started servers must not inherit (they close it with 9>&-), or it would stay held.
with_lock() {
  local lockfile="$1"
  shift
  mkdir -p "$(dirname "$lockfile")"
  if command -v flock >/dev/null 2>&1; then
    (
      flock -w 120 9 || die "could not lock $lockfile within 120 s (another services.sh running?)"
      "$@"
    ) 9>"$lockfile"
  else
    "$@"
  fi
}

# ------------------------------------------------------------------------------------ kafka

kafka_classpath() { printf '%s/*' "$KAFKA_LIBS"; }

kafka_fetch() {
  if [[ -f "$KAFKA_LIBS/.complete" ]]; then
    return 0
  fi
  command -v java >/dev/null 2>&1 || die "kafka: 'java' not found (install a JRE 17+, e.g. apt-get install openjdk-17-jre-headless)"
  command -v mvn >/dev/null 2>&1 || die "kafka: 'mvn' not found (install Maven, e.g. apt-get install maven)"
  local t0 tmp
  t0="$(now)"
  log "kafka: fetching Apache Kafka $KAFKA_VERSION (org.apache.kafka:kafka_2.13 + kafka-tools + log4j2) with mvn"
  mkdir -p "$KAFKA_DIST"
  cp "$SCRIPTS/kafka/pom.xml" "$KAFKA_DIST/pom.xml"
  tmp="$KAFKA_DIST/libs.tmp.$$"
  rm -rf "$tmp"
  if ! mvn -B -q -f "$KAFKA_DIST/pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
    "$MVN_DEPENDENCY_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$KAFKA_DIST/fetch.log" 2>&1; then
    tail -n 30 "$KAFKA_DIST/fetch.log" >&2
    rm -rf "$tmp"
    die "kafka: mvn could not fetch Kafka $KAFKA_VERSION (full log: $KAFKA_DIST/fetch.log)"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka: fetched jars lack kafka_2.13 (see $KAFKA_DIST/fetch.log)"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  touch "$KAFKA_LIBS/.complete"
  log "kafka: fetched $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars into ${KAFKA_LIBS#"$ROOT"/} in $(elapsed "$t0")s"
}

# Run a Java class from the fetched jars with quiet (stderr, WARN) logging.
kafka_class() {
  kafka_fetch
  java -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$SCRIPTS/kafka/tools-log4j2.properties" \
    -cp "$(kafka_classpath)" "$@"
}

# Random Kafka cluster id: 16 random bytes, URL-safe base64 without padding (what
# `kafka-storage.sh random-uuid` prints), avoiding a leading '-'. Saves one JVM start.
kafka_random_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* && ${#id} -eq 22 ]] && break
  done
  printf '%s' "$id"
}

kafka_render_config() {
  mkdir -p "$KAFKA_HOME" "$KAFKA_LOGS"
  sed -e "s|@PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
    -e "s|@INTERNAL_PARTITIONS@|$KAFKA_INTERNAL_PARTITIONS|g" \
    "$SCRIPTS/kafka/server.properties.in" >"$KAFKA_CONF"
}

kafka_format() {
  if [[ "$KAFKA_KEEP_DATA" == 1 && -f "$KAFKA_DATA/meta.properties" ]]; then
    log "kafka: keeping existing data in ${KAFKA_DATA#"$ROOT"/} (KAFKA_KEEP_DATA=1)"
    return 0
  fi
  rm -rf "$KAFKA_DATA"
  local cluster_id
  cluster_id="$(kafka_random_cluster_id)"
  log "kafka: formatting fresh storage (cluster id $cluster_id)"
  if ! kafka_class kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONF" \
    >"$KAFKA_LOGS/format.log" 2>&1; then
    cat "$KAFKA_LOGS/format.log" >&2
    die "kafka: storage format failed"
  fi
}

kafka_is_running() { pid_alive "$KAFKA_PID" "kafka.Kafka"; }

kafka_ready() {
  if command -v python3 >/dev/null 2>&1; then
    python3 "$SCRIPTS/kafka/kafka_ready.py" 127.0.0.1 "$KAFKA_PORT" 5 >/dev/null 2>&1
  else
    # Fallback without Python: Kafka's own admin tool (one JVM start per try).
    port_open "$KAFKA_PORT" &&
      kafka_class org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
        --command-config "$SCRIPTS/kafka/tools-client.properties" --list >/dev/null 2>&1
  fi
}

kafka_start_locked() {
  if kafka_is_running; then
    log "kafka: already running (pid $(cat "$KAFKA_PID"), 127.0.0.1:$KAFKA_PORT)"
    return 0
  fi
  rm -f "$KAFKA_PID"
  local t0 pid i
  t0="$(now)"
  if port_open "$KAFKA_PORT"; then
    die "kafka: port 127.0.0.1:$KAFKA_PORT is already in use by a process not started by this script (set KAFKA_PORT or stop it)"
  fi
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "kafka: controller port 127.0.0.1:$KAFKA_CONTROLLER_PORT is already in use (set KAFKA_CONTROLLER_PORT)"
  fi
  kafka_fetch
  # Previous run's logs are kept one generation in logs.prev/.
  rm -rf "$KAFKA_HOME/logs.prev"
  [[ -d "$KAFKA_LOGS" ]] && mv "$KAFKA_LOGS" "$KAFKA_HOME/logs.prev"
  kafka_render_config
  kafka_format
  log "kafka: starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)"
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several words on purpose
  nohup setsid java $KAFKA_HEAP_OPTS \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$KAFKA_LOGS" \
    -Dlog4j2.configurationFile="$SCRIPTS/kafka/log4j2.properties" \
    -cp "$(kafka_classpath)" kafka.Kafka "$KAFKA_CONF" \
    >"$KAFKA_LOGS/kafka.out" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$KAFKA_PID"
  wait_started kafka "broker process $pid" "$pid" "$KAFKA_PID" "kafka.Kafka" "$t0" \
    "$KAFKA_START_TIMEOUT" kafka_ready kafka_dump_logs "broker did not answer on 127.0.0.1:$KAFKA_PORT"
  log "kafka: ready on 127.0.0.1:$KAFKA_PORT (pid $pid) after $(elapsed "$t0")s"
}

kafka_dump_logs() {
  local f
  if grep -qE '\] (ERROR|FATAL) ' "$KAFKA_LOGS/server.log" 2>/dev/null; then
    printf '[services] ---- first errors in %s ----\n' "$KAFKA_LOGS/server.log" >&2
    grep -E -A3 '\] (ERROR|FATAL) ' "$KAFKA_LOGS/server.log" | head -n 30 >&2
  fi
  for f in "$KAFKA_LOGS/kafka.out" "$KAFKA_LOGS/server.log"; do
    if [[ -s "$f" ]]; then
      printf '[services] ---- last lines of %s ----\n' "$f" >&2
      tail -n 25 "$f" >&2
    fi
  done
}

kafka_start() { with_lock "$KAFKA_HOME/.lock" kafka_start_locked; }
kafka_stop() { with_lock "$KAFKA_HOME/.lock" stop_pid kafka "$KAFKA_PID" "kafka.Kafka" "$KAFKA_STOP_TIMEOUT"; }

kafka_status() {
  if kafka_is_running; then
    echo "kafka: running (pid $(cat "$KAFKA_PID"), 127.0.0.1:$KAFKA_PORT)"
    return 0
  fi
  echo "kafka: stopped"
  return 3
}

# ------------------------------------------------------------------------------- clickhouse

clickhouse_bin() {
  if command -v clickhouse-server >/dev/null 2>&1; then
    command -v clickhouse-server
  elif [[ -x /usr/sbin/clickhouse-server ]]; then
    echo /usr/sbin/clickhouse-server
  elif [[ -x /usr/bin/clickhouse ]]; then
    echo /usr/bin/clickhouse
  else
    return 1
  fi
}

clickhouse_install() {
  if clickhouse_bin >/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "clickhouse: not installed and apt-get is unavailable"
  local candidate
  candidate="$(apt-cache policy clickhouse-server 2>/dev/null | awk '/Candidate:/ { print $2 }')"
  if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
    log "clickhouse: refreshing apt lists"
    apt-get update -qq >/dev/null || true
    candidate="$(apt-cache policy clickhouse-server 2>/dev/null | awk '/Candidate:/ { print $2 }')"
  fi
  if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
    die "clickhouse: this system's apt repositories do not ship clickhouse-server; clickhouse is unavailable here"
  fi
  log "clickhouse: installing clickhouse-server/clickhouse-client $candidate with apt"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    clickhouse-server clickhouse-client >"$SERVICES_DIR/clickhouse-apt.log" 2>&1 ||
    { tail -n 20 "$SERVICES_DIR/clickhouse-apt.log" >&2; die "clickhouse: apt-get install failed"; }
  clickhouse_bin >/dev/null || die "clickhouse: installed but no server binary found"
}

clickhouse_render_config() {
  if [[ "${CLICKHOUSE_KEEP_DATA:-0}" != 1 ]]; then
    rm -rf "$CH_HOME/data" "$CH_HOME/tmp"
  fi
  mkdir -p "$CH_HOME"/{data,tmp,logs,user_files,format_schemas}
  # The root element is <yandex> for the ClickHouse 18.x that Debian 12 ships; newer servers
  # accept it too.
  cat >"$CH_HOME/config.xml" <<EOF
<?xml version="1.0"?>
<!-- generated by scripts/services.sh; edits are overwritten on start -->
<yandex>
    <logger>
        <level>information</level>
        <log>$CH_HOME/logs/clickhouse-server.log</log>
        <errorlog>$CH_HOME/logs/clickhouse-server.err.log</errorlog>
        <size>50M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$CLICKHOUSE_HTTP_PORT</http_port>
    <tcp_port>$CLICKHOUSE_TCP_PORT</tcp_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$CH_HOME/data/</path>
    <tmp_path>$CH_HOME/tmp/</tmp_path>
    <user_files_path>$CH_HOME/user_files/</user_files_path>
    <format_schema_path>$CH_HOME/format_schemas/</format_schema_path>
    <users_config>$CH_HOME/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
EOF
  cat >"$CH_HOME/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- generated by scripts/services.sh: one passwordless 'default' user, loopback only -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

clickhouse_is_running() { pid_alive "$CH_PID" "clickhouse"; }

clickhouse_ready() {
  local out
  if command -v curl >/dev/null 2>&1; then
    out="$(curl -fsS --max-time 3 "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/?query=SELECT%201" 2>/dev/null)" || return 1
  else
    out="$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/?query=SELECT%201', timeout=3).read().decode().strip())" 2>/dev/null)" || return 1
  fi
  [[ "$(printf '%s' "$out" | tr -d '[:space:]')" == 1 ]]
}

clickhouse_dump_logs() {
  local f
  for f in "$CH_HOME/logs/clickhouse.out" "$CH_HOME/logs/clickhouse-server.err.log"; do
    if [[ -s "$f" ]]; then
      printf '[services] ---- last lines of %s ----\n' "$f" >&2
      tail -n 30 "$f" >&2
    fi
  done
}

clickhouse_start_locked() {
  if clickhouse_is_running; then
    log "clickhouse: already running (pid $(cat "$CH_PID"), http 127.0.0.1:$CLICKHOUSE_HTTP_PORT)"
    return 0
  fi
  rm -f "$CH_PID"
  local t0 bin pid
  t0="$(now)"
  clickhouse_install
  bin="$(clickhouse_bin)"
  if port_open "$CLICKHOUSE_HTTP_PORT" || port_open "$CLICKHOUSE_TCP_PORT"; then
    die "clickhouse: port $CLICKHOUSE_HTTP_PORT or $CLICKHOUSE_TCP_PORT on 127.0.0.1 is already in use by a process not started by this script"
  fi
  rm -rf "$CH_HOME/logs.prev"
  [[ -d "$CH_HOME/logs" ]] && mv "$CH_HOME/logs" "$CH_HOME/logs.prev"
  clickhouse_render_config
  log "clickhouse: starting clickhouse-server $(dpkg-query -W -f '${Version}' clickhouse-server 2>/dev/null || true) (http :$CLICKHOUSE_HTTP_PORT, native :$CLICKHOUSE_TCP_PORT)"
  # Runs in the foreground of its own session; the pid file is ours ($!), not the server's.
  if [[ "$(basename "$bin")" == clickhouse ]]; then
    set -- "$bin" server
  else
    set -- "$bin"
  fi
  (cd "$CH_HOME" && exec nohup setsid "$@" --config-file="$CH_HOME/config.xml" \
    >"$CH_HOME/logs/clickhouse.out" 2>&1 </dev/null 9>&-) &
  pid=$!
  echo "$pid" >"$CH_PID"
  wait_started clickhouse "server process $pid" "$pid" "$CH_PID" "clickhouse" "$t0" \
    "$CLICKHOUSE_START_TIMEOUT" clickhouse_ready clickhouse_dump_logs \
    "server did not answer SELECT 1 on 127.0.0.1:$CLICKHOUSE_HTTP_PORT"
  log "clickhouse: ready on http://127.0.0.1:$CLICKHOUSE_HTTP_PORT (pid $pid) after $(elapsed "$t0")s"
}

clickhouse_start() { with_lock "$CH_HOME/.lock" clickhouse_start_locked; }
clickhouse_stop() { with_lock "$CH_HOME/.lock" stop_pid clickhouse "$CH_PID" "clickhouse" "$CLICKHOUSE_STOP_TIMEOUT"; }

clickhouse_status() {
  if clickhouse_is_running; then
    echo "clickhouse: running (pid $(cat "$CH_PID"), http 127.0.0.1:$CLICKHOUSE_HTTP_PORT)"
    return 0
  fi
  echo "clickhouse: stopped"
  return 3
}

# ------------------------------------------------------------------------------------- main

main() {
  [[ $# -ge 1 ]] || usage
  local cmd="$1"
  shift
  case "$cmd" in
    kafka-class)
      kafka_class "$@"
      return
      ;;
    env)
      declare -p KAFKA_VERSION KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_HEAP_OPTS KAFKA_HOME \
        KAFKA_LIBS CH_HOME CLICKHOUSE_HTTP_PORT CLICKHOUSE_TCP_PORT | sed 's/^declare -- //'
      return
      ;;
    start | stop | status | restart) ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac

  local services=("$@") s rc=0
  [[ ${#services[@]} -gt 0 ]] || services=(kafka)
  for s in "${services[@]}"; do
    case "$s" in
      kafka | clickhouse) ;;
      *) die "unknown service '$s' (known: kafka, clickhouse)" ;;
    esac
  done
  mkdir -p "$SERVICES_DIR"

  case "$cmd" in
    start)
      for s in "${services[@]}"; do "${s}_start"; done
      ;;
    stop)
      # Stop in reverse order; keep going if one fails.
      for ((i = ${#services[@]} - 1; i >= 0; i--)); do
        "${services[i]}_stop" || rc=1
      done
      ;;
    restart)
      for ((i = ${#services[@]} - 1; i >= 0; i--)); do "${services[i]}_stop"; done
      for s in "${services[@]}"; do "${s}_start"; done
      ;;
    status)
      for s in "${services[@]}"; do "${s}_status" || rc=3; done
      ;;
  esac
  return "$rc"
}

main "$@"
