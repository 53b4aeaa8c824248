#!/bin/bash
# The stand-in's entrypoint, written for the tests to behave as the official
# image's does. On every start of mysqld, each of MYSQL_ROOT_PASSWORD,
# MYSQL_DATABASE, MYSQL_USER and MYSQL_PASSWORD is read from the file its
# *_FILE names, exported and the *_FILE variable unset; MYSQL_ROOT_HOST is %
# unless set. On a first start (an empty data folder): initialise the data,
# run a temporary server without networking, set root's password, add
# root@MYSQL_ROOT_HOST (none for localhost), load the time zone tables unless
# MYSQL_INITDB_SKIP_TZINFO is set, create MYSQL_DATABASE and MYSQL_USER with
# every right on that database only, run /docker-entrypoint-initdb.d/*.sh
# and *.sql, and stop the temporary server. Then exec the command, which
# inherits what was exported. `mysqld --version` only execs the server.
set -euo pipefail

socket=/var/run/mysqld/mysqld.sock

note() { echo "$(date --rfc-3339=seconds) [Note] [Entrypoint]: $*"; }

as_root() { mysql --protocol=socket --socket="$socket" -uroot "$@"; }

# As the official image: <VAR>_FILE names a file that holds VAR's value
# (a Compose secret); VAR is exported, and <VAR>_FILE unset, on every start
# of the server, so that the server inherits VAR.
file_env() {
    local file_variable="${1}_FILE"
    if [ -n "${!file_variable:-}" ]; then
        export "$1"="$(<"${!file_variable}")"
    fi
    unset "$file_variable"
}

setup_env() {
    for variable in MYSQL_ROOT_PASSWORD MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD; do
        file_env "$variable"
    done
    export MYSQL_ROOT_HOST="${MYSQL_ROOT_HOST:-%}"
}

initialise() {
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
		DROP DATABASE IF EXISTS test;
	SQL
    if [ "$MYSQL_ROOT_HOST" != localhost ]; then
        as_root -p"$MYSQL_ROOT_PASSWORD" <<-SQL
			SET @@SESSION.SQL_LOG_BIN=0;
			CREATE USER 'root'@'${MYSQL_ROOT_HOST}' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}';
			GRANT ALL ON *.* TO 'root'@'${MYSQL_ROOT_HOST}' WITH GRANT OPTION;
		SQL
    fi
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
    for file in /docker-entrypoint-initdb.d/*; do
        case "$file" in
            *.sh)
                note "running $file"
                if [ -x "$file" ]; then "$file"; else . "$file"; fi ;;
            *.sql)
                note "running $file"
                as_root -p"$MYSQL_ROOT_PASSWORD" "${MYSQL_DATABASE:-}" < "$file" ;;
        esac
    done
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

if [ "${1:-}" = mysqld ] && ! wants_only_information "$@"; then
    setup_env
    if [ ! -d /var/lib/mysql/mysql ]; then
        initialise "$@"
    fi
fi
exec "$@"
