#!/bin/bash
# The stand-in's entrypoint, written for the tests to behave as the official
# image's does on a first start (an empty data folder): initialise the data,
# run a temporary server without networking, set root's password
# (from MYSQL_ROOT_PASSWORD or the file MYSQL_ROOT_PASSWORD_FILE names, and
# so for the others) (root@% too,
# as MYSQL_ROOT_HOST defaults to %), load the time zone tables unless
# MYSQL_INITDB_SKIP_TZINFO is set, create MYSQL_DATABASE and MYSQL_USER with
# every right on that database only, stop the temporary server, and exec the
# real one. Later starts, and `mysqld --version`, only exec the server.
set -euo pipefail

socket=/var/run/mysqld/mysqld.sock

note() { echo "$(date --rfc-3339=seconds) [Note] [Entrypoint]: $*"; }

as_root() { mysql --protocol=socket --socket="$socket" -uroot "$@"; }

# As the official image: <VAR>_FILE names a file that holds VAR's value
# (a Compose secret).
file_env() {
    local file_variable="${1}_FILE"
    if [ -n "${!file_variable:-}" ]; then
        export "$1"="$(<"${!file_variable}")"
    fi
}

initialise() {
    for variable in MYSQL_ROOT_PASSWORD MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD; do
        file_env "$variable"
    done
    : "${MYSQL_ROOT_PASSWORD:?Database is uninitialized and MYSQL_ROOT_PASSWORD is not set}"
    if [ "${MYSQL_USER:-}" = root ]; then
        echo "MYSQL_USER=root: MYSQL_USER and MYSQL_PASSWORD are for a regular user" >&2
        exit 1
    fi
    note "Initializing database files"
    "$@" --initialize-insecure --default-time-zone=SYSTEM
    note "Starting temporary server"
    "$@" --daemonize --skip-networking --default-time-zone=SYSTEM --socket="$socket"
    if [ -z "${MYSQL_INITDB_SKIP_TZINFO:-}" ]; then
        mysql_tzinfo_to_sql /usr/share/zoneinfo 2>/dev/null | as_root mysql
    fi
    as_root <<-SQL
		SET @@SESSION.SQL_LOG_BIN=0;
		ALTER USER 'root'@'localhost' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}';
		CREATE USER 'root'@'%' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}';
		GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
		DROP DATABASE IF EXISTS test;
	SQL
    if [ -n "${MYSQL_DATABASE:-}" ]; then
        note "Creating database ${MYSQL_DATABASE}"
        as_root -p"$MYSQL_ROOT_PASSWORD" -e "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}\`"
    fi
    if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
        note "Creating user ${MYSQL_USER}"
        as_root -p"$MYSQL_ROOT_PASSWORD" \
            -e "CREATE USER '${MYSQL_USER}'@'%' IDENTIFIED BY '${MYSQL_PASSWORD}'"
        if [ -n "${MYSQL_DATABASE:-}" ]; then
            # GRANT reads _ and % in a database name as patterns: escape them.
            as_root -p"$MYSQL_ROOT_PASSWORD" \
                -e "GRANT ALL ON \`${MYSQL_DATABASE//_/\\_}\`.* TO '${MYSQL_USER}'@'%'"
        fi
    fi
    note "Stopping temporary server"
    mysqladmin --socket="$socket" -uroot -p"$MYSQL_ROOT_PASSWORD" shutdown
    note "MySQL init process done. Ready for start up."
}

wants_only_information() {
    for arg; do
        case "$arg" in -'?' | --help | --print-defaults | -V | --version) return 0 ;; esac
    done
    return 1
}

if [ "${1:-}" = mysqld ] && [ ! -d /var/lib/mysql/mysql ] && ! wants_only_information "$@"; then
    initialise "$@"
fi
exec "$@"
