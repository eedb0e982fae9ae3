#!/usr/bin/env bash
# Make sure MariaDB and Redis answer on 127.0.0.1; start them if installed but down.
set -euo pipefail

db_host=${FLASHSALE_DB_HOST:-127.0.0.1}
db_port=${FLASHSALE_DB_PORT:-3306}

mysql_up() {
  python3 - "$db_host" "$db_port" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

redis_up() {
  command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG
}

wait_for() {
  for _ in $(seq 1 60); do "$1" && return 0; sleep 0.5; done
  return 1
}

missing=()
if ! mysql_up; then
  if [ -x /usr/sbin/mariadbd ]; then
    echo "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for mysql_up || { echo "MariaDB did not come up" >&2; exit 1; }
  else
    missing+=("mariadb-server")
  fi
fi
if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for redis_up || { echo "Redis did not come up" >&2; exit 1; }
  else
    missing+=("redis-server")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "FlashSale needs MariaDB and Redis. Install them first: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
