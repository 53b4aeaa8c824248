#!/bin/sh
# The stack's database users, each with the rights of its job and no more
# (docs/least-privilege.md, "Database users"):
#
#   DB_APP_USER      the app replicas: read and write the rows of MYSQL_DATABASE
#   DB_MIGRATE_USER  the migrate service: change MYSQL_DATABASE's schema too
#   DB_BACKUP_USER   the backup service: consistent dumps, and copies of the
#                    binary logs
#   DB_MONITOR_USER  the monitoring profile's mysqld_exporter: the server's
#                    status and variables, which need no right at all
#
# root is none of them: the image makes it for the local socket only
# (MYSQL_ROOT_HOST=localhost), where restore.sh uses it.
#
# The image runs this once, on the first start, as root through the socket;
# the production Kubernetes overlay runs it against its cluster. Run it
# again to apply changed passwords (secrets/) or rights to a running
# database; it sets every user's password and rights afresh, and keeps each
# user's previous password valid beside the new one (MySQL's dual
# passwords), so that the services using it can move over one at a time
# (docs/least-privilege.md, "Database users"); `forget-old` then ends the previous ones:
#   docker compose exec db /docker-entrypoint-initdb.d/users.sh [forget-old]
set -eu
umask 077

# root's password: on the first start the image's entrypoint has read it
# from MYSQL_ROOT_PASSWORD_FILE into MYSQL_ROOT_PASSWORD (and unset the
# former); run by hand, it is in the file.
require_settings() {
    root=MYSQL_ROOT_PASSWORD_FILE
    [ -z "${MYSQL_ROOT_PASSWORD:-}" ] || root=MYSQL_ROOT_PASSWORD
    for name in MYSQL_DATABASE "$root" DB_APP_USER DB_APP_PASSWORD_FILE \
        DB_MIGRATE_USER DB_MIGRATE_PASSWORD_FILE DB_BACKUP_USER DB_BACKUP_PASSWORD_FILE \
        DB_MONITOR_USER DB_MONITOR_PASSWORD_FILE; do
        value=$(printenv "$name") || value=""
        [ -n "$value" ] || { echo "users: $name must be set and non-empty" >&2; exit 1; }
        case "$name" in
            *_FILE) [ -r "$value" ] && [ -s "$value" ] || {
                echo "users: $name must name a readable, non-empty file, not '$value'" >&2
                exit 1
            } ;;
        esac
    done
}

# A file's content as an SQL string: quotes and backslashes doubled.
string_from() {
    printf "'%s'" "$(sed -e 's/\\/\\\\/g' -e "s/'/''/g" "$1")"
}

# One user: made if new, its password set, every right it had taken away,
# then the rights of its job given.
user() {
    account="'$1'@'%'"
    printf 'CREATE USER IF NOT EXISTS %s IDENTIFIED BY %s;\n' "$account" "$(string_from "$2")"
    printf 'ALTER USER %s IDENTIFIED BY %s RETAIN CURRENT PASSWORD;\n' "$account" "$(string_from "$2")"
    printf 'REVOKE ALL PRIVILEGES, GRANT OPTION FROM %s;\n' "$account"
    shift 2
    for rights; do
        printf 'GRANT %s TO %s;\n' "$rights" "$account"
    done
}

users_sql() {
    # The image made the database already; the operator's cluster has none.
    echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\` CHARACTER SET utf8mb4;"
    # In GRANT, _ in a database name is a wildcard: escaped, it is itself.
    database="\`$(echo "$MYSQL_DATABASE" | sed 's/_/\\_/g')\`.*"
    user "$DB_APP_USER" "$DB_APP_PASSWORD_FILE" "SELECT, INSERT, UPDATE, DELETE ON $database"
    user "$DB_MIGRATE_USER" "$DB_MIGRATE_PASSWORD_FILE" "ALL PRIVILEGES ON $database"
    # mysqldump --single-transaction --source-data --routines --events
    # --triggers, FLUSH BINARY LOGS, and mysqlbinlog --read-from-remote-server.
    user "$DB_BACKUP_USER" "$DB_BACKUP_PASSWORD_FILE" \
        "SELECT, SHOW VIEW, TRIGGER, EVENT ON $database" \
        "RELOAD, REPLICATION CLIENT, REPLICATION SLAVE, SHOW_ROUTINE ON *.*"
    # SHOW GLOBAL STATUS and VARIABLES: no right needed, so none given; a
    # few connections at most, so that it never takes the app's.
    user "$DB_MONITOR_USER" "$DB_MONITOR_PASSWORD_FILE"
    printf "ALTER USER '%s'@'%%' WITH MAX_USER_CONNECTIONS 3;\n" "$DB_MONITOR_USER"
}

# Each user's previous password, kept by the last run, no longer valid.
forget_old_sql() {
    for name in "$DB_APP_USER" "$DB_MIGRATE_USER" "$DB_BACKUP_USER" "$DB_MONITOR_USER"; do
        printf "ALTER USER '%s'@'%%' DISCARD OLD PASSWORD;\n" "$name"
    done
}

# root's password in a file only this user reads, never on a command line.
apply() {
    options=$(mktemp)
    trap 'rm -f "$options"' EXIT
    password=${MYSQL_ROOT_PASSWORD:-$(cat "${MYSQL_ROOT_PASSWORD_FILE:-}")}
    printf '[client]\nuser=root\npassword="%s"\n' "$password" > "$options"
    "$1" | mysql --defaults-extra-file="$options"
}

require_settings
case "${1:-}" in
    "")
        apply users_sql
        echo "users: $DB_APP_USER, $DB_MIGRATE_USER, $DB_BACKUP_USER and $DB_MONITOR_USER have their rights on $MYSQL_DATABASE; their previous passwords stay valid until 'users.sh forget-old'" >&2
        ;;
    forget-old)
        apply forget_old_sql
        echo "users: only the passwords in the secrets are valid now" >&2
        ;;
    *)
        echo "usage: users.sh [forget-old]" >&2
        exit 2
        ;;
esac
