#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway PostgreSQL cluster for tests and benchmarks.
#
#   scripts/pg.sh start DIR      initdb + pg_ctl start in DIR (created; must not hold a
#                                cluster yet), on a free 127.0.0.1 port; prints ONE line:
#                                the DATABASE_URL to use (postgresql://...)
#   scripts/pg.sh stop DIR       stop the cluster and remove DIR
#   scripts/pg.sh restart DIR    pg_ctl restart (same port; clients must reconnect)
#   scripts/pg.sh url DIR        print the DATABASE_URL of a running cluster again
#   scripts/pg.sh available      exit 0 when the server binaries exist (else 1, with why)
#
# The server binaries come from PG_BIN, else the newest /usr/lib/postgresql/*/bin.
# PG_SERVER_OPTS: more server settings for start and restart (e.g. "-c log_checkpoints=on"),
# for benchmarks that look inside the server; tests leave it unset.
# PostgreSQL refuses to run as root: as root, the cluster belongs to the
# `postgres` user (runuser). Authentication is `trust` on 127.0.0.1 and the
# socket in DIR only — never use this for anything but tests.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }

find_bin() {
	if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then echo "$PG_BIN"; return 0; fi
	local d best=""
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && best=$d
	done
	[ -n "$best" ] || return 1
	echo "$best"
}

# Run a command as the cluster's owner.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

free_port() {
	# ask the kernel for a free port (bind to port 0), with node or python as available
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
	elif command -v node >/dev/null 2>&1; then
		node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
	else
		echo $(( 20000 + RANDOM % 20000 ))
	fi
}

cmd=${1:-}
dir=${2:-}
case "$cmd" in
available)
	find_bin >/dev/null || { echo "pg.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 1; }
	if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
		echo "pg.sh: running as root and there is no 'postgres' user to own the cluster" >&2
		exit 1
	fi
	exit 0
	;;
start)
	[ -n "$dir" ] || die "usage: pg.sh start DIR"
	bin=$(find_bin) || die "no PostgreSQL server binaries (apt-get install postgresql)"
	mkdir -p "$dir"
	[ -e "$dir/data/PG_VERSION" ] && die "$dir already holds a cluster"
	chmod 700 "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
		runuser -u postgres -- test -x "$dir" ||
			die "the postgres user cannot reach $dir (a parent directory is private); use a directory directly under /tmp"
	fi
	as_owner "$bin/initdb" -D "$dir/data" -U trellohook -A trust -E UTF8 --no-locale \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
	port=""
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		# fsync stays on: group commit is measured with real flushes
		if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
			-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 ${PG_SERVER_OPTS:-}" \
			start >/dev/null 2>&1; then
			echo "$port" >"$dir/port"
			break
		fi
		port=""
	done
	[ -n "$port" ] || { tail -20 "$dir/server.log" >&2; die "pg_ctl start failed"; }
	as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U trellohook -d postgres -qAt \
		-c "CREATE DATABASE trellohook" >/dev/null || die "createdb failed"
	echo "postgresql://trellohook:trellohook@127.0.0.1:$port/trellohook"
	;;
restart)
	[ -n "$dir" ] || die "usage: pg.sh restart DIR"
	bin=$(find_bin) || die "no PostgreSQL server binaries"
	port=$(cat "$dir/port")
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -m fast \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 ${PG_SERVER_OPTS:-}" \
		restart >/dev/null
	;;
url)
	[ -n "$dir" ] || die "usage: pg.sh url DIR"
	echo "postgresql://trellohook:trellohook@127.0.0.1:$(cat "$dir/port")/trellohook"
	;;
stop)
	[ -n "$dir" ] || die "usage: pg.sh stop DIR"
	if [ -e "$dir/data/PG_VERSION" ]; then
		bin=$(find_bin) || die "no PostgreSQL server binaries"
		as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	;;
*)
	die "usage: pg.sh start|stop|restart|url DIR, or pg.sh available"
	;;
esac
