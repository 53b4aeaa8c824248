#!/bin/sh
# Restore the database from a dump of the backup service, optionally up to
# a moment after it:
#
#   ./restore.sh                                     list the dumps kept
#   ./restore.sh --key FILE [--yes] <dump>           the dump, and every change after it
#   ./restore.sh --key FILE [--yes] <dump> 'YYYY-MM-DD HH:MM:SS'   ... up to that moment
#   ./restore.sh --help                              this text
#
# The moment is the site's time, in the time zone of the backup service's
# TZ (the time_zone answer); the dumps are named by their time in UTC.
# FILE is the backups' private key (backup-private-key.pem, which the bake
# wrote and you moved off the host): the dumps are encrypted to its
# certificate. It goes to the backup service on standard input, which keeps
# it in memory (its tmpfs) for the restore alone. It asks before it stops
# anything, naming the Compose project; --yes answers for you (without a
# terminal, it is required).
#
# 1. Check the dump and its binary logs (they must decrypt with the key); a
#    damaged one, or the wrong key, is refused before anything stops, and
#    the live database is left as it is.
# 2. Stop the app replicas, the only writers.
# 3. Replace the database with the dump and replay the binary logs, as root
#    through the database's own socket (the backup service's user may only
#    read: it writes the SQL, "backup replay"); then take a fresh dump.
# 4. Check that the schema has every migration of the code (migrate --check).
# 5. Start the replicas again, and wait until they are healthy.
# If step 3 or 4 fails the replicas stay stopped (the database may be half
# restored): restore another dump, or fix what the message says.
set -eu
cd "$(dirname "$0")"

backup() {
    docker compose exec -T backup /entrypoint.sh backup "$@"
}

# SQL from standard input, as root through the db container's socket, the
# only place root may log in from; root's password stays in that container.
# Nothing of it goes into the binary log: the fresh dump after it starts
# the next chain of binary logs.
as_root() {
    docker compose exec -T db bash -c 'exec mysql --defaults-extra-file=<(
        printf "[client]\nuser=root\npassword=\"%s\"\n" "$(cat "$MYSQL_ROOT_PASSWORD_FILE")"
    ) --init-command="SET SESSION sql_log_bin=0"'
}

# The replay's SQL run as root; fails if either end does.
replay() {
    failed=$(mktemp)
    { backup replay "$@" < "$key" || echo failed > "$failed"; } | as_root && [ ! -s "$failed" ]
    status=$?
    rm -f "$failed"
    return "$status"
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

refuse() {
    echo "restore: $1 (./restore.sh --help)" >&2
    exit 2
}

yes="" dump="" moment="" key=""
while [ "$#" -gt 0 ]; do
    argument=$1
    shift
    case "$argument" in
        -h | --help) usage; exit 0 ;;
        -y | --yes) yes=1 ;;
        -k | --key)
            [ "$#" -gt 0 ] || refuse "--key needs the private key's file"
            key=$1
            shift ;;
        -*) refuse "unknown option $argument" ;;
        *)
            if [ -z "$dump" ]; then dump=$argument
            elif [ -z "$moment" ]; then moment=$argument
            else refuse "one dump and at most one moment, not also '$argument'"
            fi ;;
    esac
done

if [ -z "$dump" ]; then
    echo "restore: the dumps kept, oldest first (./restore.sh <dump> ['YYYY-MM-DD HH:MM:SS']):"
    backup list
    exit 0
fi
set -- "$dump"
[ -z "$moment" ] || set -- "$dump" "$moment"

if [ -z "$key" ]; then
    [ -t 0 ] || refuse "the dumps are encrypted: give their private key with --key FILE"
    printf "restore: the file of the backups' private key: "
    read -r key
fi
[ -f "$key" ] && [ -r "$key" ] || refuse "no private key to read at '$key'"

backup verify "$@" < "$key"

project=$(docker compose config | sed -n 's/^name: //p')
if [ -z "$yes" ]; then
    [ -t 0 ] || refuse "this replaces the database of $project; confirm with --yes"
    printf 'restore: stop the app of %s and replace its database with %s%s? [y/N] ' \
        "$project" "$dump" "${moment:+ up to $moment}"
    read -r answer
    case "$answer" in
        y | Y | yes) ;;
        *) echo "restore: nothing changed"; exit 1 ;;
    esac
fi

# As many replicas as run now come back; if none run, the compose file's number.
count=$(docker compose ps --quiet app | wc -l)
scale=""
if [ "$count" -gt 0 ]; then
    scale="--scale=app=$count"
fi
echo "restore: stopping the app replicas"
docker compose stop app

echo "restore: replacing the database with dump $dump${moment:+ up to $moment}"
if ! replay "$@" || ! backup now; then
    echo "restore: FAILED; the app stays stopped. Restore another dump: ./restore.sh" >&2
    exit 1
fi
if ! docker compose run --rm --no-deps migrate python manage.py migrate --check; then
    echo "restore: the restored schema lacks migrations of this code; the app stays stopped." >&2
    echo "restore: apply them (docker compose run --rm migrate), then: docker compose up -d" >&2
    exit 1
fi

echo "restore: starting the app replicas"
# shellcheck disable=SC2086  # no word when empty
docker compose up --detach --wait --no-deps --no-recreate $scale app
echo "restore: done"
