#!/usr/bin/env bash
# make bench-postfix: the queue benchmark of `mailflow bench` with a Postfix column.
# Installs Postfix from Debian if it is missing (left unconfigured, so no system
# instance starts), runs one instance from a throw-away directory (its own main.cf,
# master.cf, queue, data and log) listening on a loopback address and relaying every
# message to the benchmark's sink, runs the benchmark, then stops the instance and
# removes the directory, also when the run fails or is interrupted.
# Arguments go to `mailflow bench` (see `mailflow bench -h`).
set -euo pipefail
cd "$(dirname "$0")/.."
MAILFLOW=${MAILFLOW:-bin/mailflow}

if [ "$(id -u)" != 0 ]; then
  echo "bench-postfix: needs root (apt-get, and Postfix's master runs as root)" >&2
  exit 1
fi
if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'ok installed'; then
  echo "bench-postfix: installing postfix" >&2
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
fi
# perf counts the fsyncs of both MTAs alike (syscall tracepoints).
if ! command -v perf >/dev/null; then
  echo "bench-postfix: installing linux-perf" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
fi

# One random loopback /32 for the sink (2626), Postfix (2625) and the Edge (2525), so
# a run does not meet another one's listeners.
IP=127.217.$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
SINK_PORT=2626
POSTFIX_PORT=2625

DIR=$(mktemp -d /tmp/mailflow-bench-postfix.XXXXXX)
PIDFILE=$DIR/queue/pid/master.pid
cleanup() {
  local rc=$?
  if [ -s "$PIDFILE" ]; then
    local pid
    pid=$(tr -d ' ' <"$PIDFILE")
    postfix -c "$DIR/etc" stop >/dev/null 2>&1 || true
    # stop returns before the master has ended its children; wait for the master.
    for _ in $(seq 100); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      echo "bench-postfix: the Postfix master ($pid) did not stop; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  if [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ -s "$DIR/log/maillog" ]; then
    echo "bench-postfix: the end of Postfix's log:" >&2
    tail -n 20 "$DIR/log/maillog" >&2
  fi
  rm -rf "$DIR"
  exit "$rc"
}
# A master that has exited but not been reaped yet counts as stopped.
running() { ps -o stat= -p "$1" 2>/dev/null | grep -qv Z; }
# Postfix's commands log to postlogd, which does not run before the master, and write
# to stderr only on a tty: give them one, and show what they said when they fail.
pf() {
  local out
  out=$(script -qec "postfix -c '$DIR/etc' $*" /dev/null) || {
    echo "bench-postfix: postfix $*: $out" >&2
    return 1
  }
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Postfix's daemons run as the postfix user and must reach the queue through $DIR.
chmod 755 "$DIR"
mkdir -p "$DIR/etc" "$DIR/queue" "$DIR/data" "$DIR/log"
chown postfix "$DIR/data" "$DIR/log"
cat >"$DIR/etc/main.cf" <<EOF
# Throw-away instance of make bench-postfix: relays everything from loopback clients
# to the benchmark's sink; Postfix's defaults otherwise (queue file fsynced before 250,
# 20 parallel deliveries to one destination, connection caching).
compatibility_level = 3.6
myhostname = postfix.bench.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
biff = no
# The listener's address is in master.cf: inet_interfaces takes only addresses an
# interface has, and 127.0.0.0/8 beyond 127.0.0.1 is routed, not assigned.
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
# No reverse lookup of the client: there is no DNS to ask.
smtpd_peername_lookup = no
relayhost = [$IP]:$SINK_PORT
smtpd_tls_security_level = none
smtp_tls_security_level = none
queue_directory = $DIR/queue
data_directory = $DIR/data
maillog_file = $DIR/log/maillog
maillog_file_prefixes = $DIR/log
# Retries an hour apart: with the sink deferring, each queued message is tried once
# and then held, as on the Edge.
queue_run_delay = 3600s
minimal_backoff_time = 3600s
maximal_backoff_time = 3600s
EOF
# Debian's master.cf with nothing chrooted and the SMTP listener on the test port.
awk -v listen="$IP:$POSTFIX_PORT" '
  /^smtp[ \t]+inet[ \t]/ { $1 = listen }
  /^[a-z]/ && NF >= 8 { $5 = "n" }
  { print }
' /usr/share/postfix/master.cf.dist >"$DIR/etc/master.cf"

pf check
pf start

"$MAILFLOW" bench --sink "$IP:$SINK_PORT" --edge "$IP" \
  --postfix "$IP:$POSTFIX_PORT" --postfix-pid "$PIDFILE" \
  --postfix-name "Postfix $(postconf -c "$DIR/etc" -h mail_version)" "$@"
