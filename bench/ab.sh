#!/usr/bin/env bash
# A/B in one sitting (BENCHMARKS.md, "One house"): bench/ab.sh OLD_CHECKOUT NEW_CHECKOUT, each
# with its own .venv. One stack of servers on its own ports and state dir; the process under
# test (stream worker, bench bridge, gateway) comes from each side's code in turns.
set -u
export HOMESTREAM_STATE_DIR=/tmp/abstack HOMESTREAM_MQTT_PORT=21883 HOMESTREAM_MQTT_TLS_PORT=28883 \
  HOMESTREAM_GATEWAY_PORT=28080 HOMESTREAM_KAFKA_PORT=29092 HOMESTREAM_KAFKA_CONTROLLER_PORT=29093 \
  HOMESTREAM_PG_PORT=25432 HOMESTREAM_REDIS_PORT=26379 HOMESTREAM_STREAMS_METRICS_PORT=29401 \
  HOMESTREAM_BRIDGE_METRICS_PORT=29411 HOMESTREAM_SINK_METRICS_PORT=29421 \
  HOMESTREAM_REDIS_SINK_METRICS_PORT=29431 HOMESTREAM_BRIDGES=0 HOMESTREAM_LOG_FORMAT=text
OLD_DIR=$(realpath "${1:?old checkout}") NEW_DIR=$(realpath "${2:?new checkout}")
OLD=$OLD_DIR/.venv/bin/homestream
NEW=$NEW_DIR/.venv/bin/homestream
OUT=${AB_OUT:-/tmp/ab}; mkdir -p $OUT
side_bin() { [ "$1" = old ] && echo $OLD || echo $NEW; }
restart() {  # restart service $1 with side $2's code, started directly (not through `up`)
  local pidf=$HOMESTREAM_STATE_DIR/run/$1.pid dir=$HOMESTREAM_STATE_DIR/$1 py
  if [ -f "$pidf" ]; then kill $(head -1 $pidf) 2>/dev/null; sleep 4; fi
  [ "$2" = old ] && py=$OLD_DIR/.venv/bin/python || py=$NEW_DIR/.venv/bin/python
  cd "$(dirname "$(dirname "$(dirname "$py")")")"  # -m imports from the working dir first
  case $1 in
    streams-1) $py -m homestream.cli streams worker --name worker-1 --data-dir $dir \
                 --metrics-port 29401 --loglevel info >> $OUT/$1-$2.log 2>&1 & ;;
    gateway)   $py -m homestream.cli gateway --data-dir $dir >> $OUT/$1-$2.log 2>&1 & ;;
  esac
  printf '%s\n%s\n' $! $dir > $pidf
  cd - > /dev/null
  sleep 20
}
rm -rf $OUT; mkdir -p $OUT; $NEW up --no-demo > $OUT/up.log 2>&1 || { echo "up failed"; tail $OUT/up.log; exit 1; }
ls $HOMESTREAM_STATE_DIR/run
for round in 1 2; do
  for side in old new; do
    restart streams-1 $side
    $NEW bench streams --json > $OUT/streams-$side-$round.json 2> $OUT/streams-$side-$round.err
    echo "streams $side $round: $(python3 -c "import json;d=(lambda t: json.loads(t[t.index('{'):]))(open('$OUT/streams-$side-$round.json').read());print(d['throughput_reports_per_s'],d['latency_p50_ms'],d['latency_p99_ms'])" 2>&1)"
  done
done
restart streams-1 new
for round in 1 2; do
  for side in old new; do
    $(side_bin $side) bench bridge --json > $OUT/bridge-$side-$round.json 2> $OUT/bridge-$side-$round.err
    echo "bridge $side $round: $(python3 -c "import json;d=(lambda t: json.loads(t[t.index('{'):]))(open('$OUT/bridge-$side-$round.json').read());print(d['throughput_msgs_per_s'],d['command_p50_ms'],d['command_p99_ms'])" 2>&1)"
  done
done
for round in 1 2; do
  for side in old new; do
    # The worker too: a gateway reads the StateChange version its own side's worker writes
    # (an older gateway cannot read a newer schema version; consumers upgrade first).
    restart streams-1 $side
    restart gateway $side
    $NEW bench gateway --json > $OUT/gateway-$side-$round.json 2> $OUT/gateway-$side-$round.err
    echo "gateway $side $round: $(python3 -c "import json;d=(lambda t: json.loads(t[t.index('{'):]))(open('$OUT/gateway-$side-$round.json').read());print(d['p50_ms'],d['p99_ms'],d['kafka_p99_ms'],d['kb_per_connection'])" 2>&1)"
  done
done
$NEW down --purge > $OUT/down.log 2>&1
echo AB-DONE
