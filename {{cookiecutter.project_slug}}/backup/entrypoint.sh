#!/bin/sh
# Start the backup image: backups of the database that are checked before
# they are trusted, and a way back to any second since the oldest one kept.
#
#   backup forever            (the CMD) dump every BACKUP_INTERVAL seconds and
#                             copy the binary logs off the server every
#                             BINLOG_INTERVAL seconds; keep BACKUP_KEEP dumps
#   backup now                dump once, now
#   backup ship               copy the binary logs now
#   backup list               the dumps kept, oldest first
#   backup health             the age of the last good dump; fails when it
#                             is older than BACKUP_INTERVAL plus an hour
#   backup verify <dump> [<moment>] < private-key.pem
#                             check a dump, its binary logs and the moment;
#                             touch nothing
#   backup replay <dump> [<moment>] < private-key.pem
#                             check them, then print the SQL that replaces
#                             DB_NAME with the dump and replays its binary
#                             logs, up to <moment> ('YYYY-MM-DD HH:MM:SS', the
#                             site's time in TZ; UTC without it) if given.
#                             restore.sh runs it as root in the db
#                             container: DB_USER may only read.
#
# Each dump is a folder named by its UTC time, holding dump.sql.gz.cms, the
# binary logs written after it (binlogs/*.cms), and checksums of both; every
# file is readable by its owner only. Both are encrypted before they reach
# the volume (OpenSSL's CMS, AES-256-GCM) to the certificate
# BACKUP_CERTIFICATE_FILE names, whose private key is kept off this host:
# only verify and replay need it, on standard input. Any other command (a
# shell, say) runs as it is.
set -eu
umask 077

# The volume's path in the container, unless BACKUP_DIR (docs/settings.md) moves it.
backups="${BACKUP_DIR:-/backups}"

# 1. Fail fast on a missing, empty or non-numeric setting, naming it.
require_settings() {
    for name in DB_HOST DB_PORT DB_NAME DB_USER DB_PASSWORD_FILE BACKUP_CERTIFICATE_FILE \
        BACKUP_INTERVAL BACKUP_KEEP BINLOG_INTERVAL; do
        value=$(printenv "$name") || value=""
        [ -n "$value" ] || { echo "backup: $name must be set and non-empty" >&2; exit 1; }
        # A secret comes as a file (Compose and Kubernetes secrets), so that
        # it is in no environment.
        case "$name" in
            *_FILE) [ -r "$value" ] && [ -s "$value" ] || {
                echo "backup: $name must name a readable, non-empty file, not '$value'" >&2
                exit 1
            } ;;
        esac
    done
    for name in BACKUP_INTERVAL BACKUP_KEEP BINLOG_INTERVAL; do
        case "$(printenv "$name")" in
            *[!0-9]* | 0*) echo "backup: $name must be a whole number above 0" >&2 && exit 1 ;;
        esac
    done
}

# 2. Render the clients' options: the password goes in a file only this
#    user reads, never on a command line, where `ps` would show it.
render_options() {
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    options="$work/options"
    printf '[client]\nhost=%s\nport=%s\nuser=%s\npassword="%s"\n' \
        "$DB_HOST" "$DB_PORT" "$DB_USER" "$(cat "$DB_PASSWORD_FILE")" > "$options"
}

sql() {
    mysql --defaults-extra-file="$options" --batch --skip-column-names --execute "$1"
}

# 3. Check that the server answers, and keeps the binary logs that a
#    recovery to a point in time replays.
check_server() {
    log_bin=$(sql "SELECT @@log_bin") || { echo "backup: cannot reach the database at $DB_HOST:$DB_PORT" >&2; exit 1; }
    [ "$log_bin" = 1 ] || { echo "backup: binary logging is off on $DB_HOST: no recovery to a point in time" >&2; exit 1; }
}

# One dump, backup or restore at a time: a restore must not be dumped half
# done. A lock whose holder died is taken over.
lock() {
    until mkdir "$backups/.lock" 2>/dev/null; do
        holder=$(cat "$backups/.lock/pid" 2>/dev/null || true)
        if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then
            rm -rf "$backups/.lock"
        else
            sleep 1
        fi
    done
    echo $$ > "$backups/.lock/pid"
    trap 'rm -rf "$work" "$backups/.lock"' EXIT
}

# Finished dumps only: one being written (.partial-<time>) is not a dump.
list() {
    find "$backups" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' -exec basename {} \; | sort
}

latest() {
    list | tail -n 1
}

# The binary log and position a dump starts at, from the line of its header
# that says so (in $1):
# "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000004', SOURCE_LOG_POS=158;"
# (MariaDB: CHANGE MASTER TO MASTER_LOG_FILE=..., MASTER_LOG_POS=...).
start_of() {
    sed -n "s/.*_LOG_FILE='\([^']*\)', *[A-Z]*_LOG_POS=\([0-9]*\).*/\1 \2/p" "$1"
}

# Whether a client has an option (MySQL's and MariaDB's differ).
supports() {
    "$1" --help | grep -q -- "$2"
}

# The server's identity: a new data volume is a new server, whose binary
# logs start again at 000001 and do not continue an earlier dump.
server_id() {
    sql "SHOW VARIABLES LIKE 'server_uuid'" | cut -f 2
}

# Copy the closed binary logs of a dump's chain that are not copied yet
# (from its start, and before $2 when given). The server's current log is
# closed first when it holds anything new. No dump yet, another server, or a
# log the chain needs that the server no longer has: the chain is broken
# (`broken` says why), and only a fresh dump starts a new one.
ship_binlogs() {
    broken="" chain="$backups/$1" end="${2:-}"
    [ -n "$1" ] || { broken="there is no dump yet" && return; }
    if [ "$(server_id)" != "$(cat "$chain/server")" ]; then
        broken="the database server changed since dump $1 (a new data volume?)"
        return
    fi
    mkdir -p "$chain/binlogs"
    current=$(sql "SHOW BINARY LOGS" | tail -n 1 | cut -f 1,2)
    if [ "$current" != "$(cat "$chain/binlogs/.current" 2>/dev/null || true)" ]; then
        sql "FLUSH BINARY LOGS"
        sql "SHOW BINARY LOGS" | tail -n 1 | cut -f 1,2 > "$chain/binlogs/.current"
    fi
    read -r start _ < "$chain/start"
    last=$(shipped "$chain" | tail -n 1)
    # The closed logs from the chain's start (or after the last one copied),
    # which must follow on without a gap.
    wanted=$(sql "SHOW BINARY LOGS" | sed '$d' | cut -f 1 \
        | awk -v start="$start" -v last="$last" -v end="$end" '
            $1 < start || (last != "" && $1 <= last) || (end != "" && $1 >= end) { next }
            !checked++ {
                digits = length(last) - index(last, ".")
                want = last == "" ? start : sprintf("%s%0" digits "d", \
                    substr(last, 1, length(last) - digits), substr(last, length(last) - digits + 1) + 1)
                if ($1 != want) { print "MISSING " want; exit }
            }
            { print $1 }')
    case "$wanted" in
        MISSING*)
            broken="the server no longer has binary log ${wanted#MISSING } of dump $1"
            return
            ;;
    esac
    for name in $wanted; do
        # The plain log only in memory (a private tmpfs), encrypted on its
        # way to the volume.
        mysqlbinlog --defaults-extra-file="$options" --read-from-remote-server --raw \
            --result-file="$work/" "$name"
        encrypt < "$work/$name" > "$chain/binlogs/.partial-$name.cms"
        rm -f "$work/$name"
        mv "$chain/binlogs/.partial-$name.cms" "$chain/binlogs/$name.cms"
        (cd "$chain/binlogs" && sha256sum "$name.cms" >> SHA256SUMS)
    done
}

# The binary logs a chain holds, in order, by their server names.
shipped() {
    find "$1/binlogs" -name '*.cms' ! -name '.*' -exec basename {} .cms \; 2>/dev/null | sort
}

# Standard input encrypted to the backups' certificate, on standard output.
encrypt() {
    openssl cms -encrypt -binary -stream -aes-256-gcm -outform DER "$BACKUP_CERTIFICATE_FILE"
}

# A file decrypted with the private key from standard input, on standard output.
decrypt() {
    openssl cms -decrypt -binary -inform DER -in "$1" -inkey "$key"
}

# The private key, from standard input, into the private tmpfs: it must be
# the key of the certificate the backups are encrypted to.
read_key() {
    key="$work/key.pem"
    cat > "$key"
    [ -s "$key" ] || refuse "the backups' private key must come on standard input (restore.sh --key FILE)"
    expected=$(openssl x509 -in "$BACKUP_CERTIFICATE_FILE" -noout -pubkey)
    given=$(openssl pkey -in "$key" -pubout 2>/dev/null) || refuse "what came on standard input is no private key"
    [ "$given" = "$expected" ] || refuse "that is not the private key of the certificate the backups are encrypted to"
}

# A consistent dump, without blocking writers (--single-transaction), that
# starts a fresh binary log and notes it. It counts once it checks out.
dump() {
    previous=$(latest)
    ship_binlogs "$previous"
    # Named by the second: the next dump waits for a second of its own.
    while [ -e "$backups/$(date -u +%Y%m%dT%H%M%SZ)" ]; do sleep 1; done
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    partial="$backups/.partial-$stamp"
    rm -rf "$backups"/.partial-*
    mkdir "$partial"
    server_id > "$partial/server"
    # MySQL 8.0.26 and later call it --source-data, MariaDB --master-data.
    position=--source-data=2
    supports mysqldump --source-data || position=--master-data=2
    # MySQL with GTIDs (9.x has them on) would have a restore claim the dumped
    # server's GTIDs, which fails on a server that has them already.
    gtids=""
    ! supports mysqldump --set-gtid-purged || gtids=--set-gtid-purged=OFF
    # MySQL 9's masking policies are an Enterprise feature: the community
    # server has none, and no table that mysqldump could read them from.
    masking=""
    ! supports mysqldump --masking-policies || masking=--skip-masking-policies
    # On its way to gzip and the encryption, awk notes the line that says
    # where in the binary logs the dump starts, and the last line.
    seen="$work/seen"
    # shellcheck disable=SC2086  # no word when empty
    mysqldump --defaults-extra-file="$options" --single-transaction "$position" $gtids $masking \
        --flush-logs --routines --events --triggers --hex-blob --no-tablespaces "$DB_NAME" \
        | awk -v seen="$seen" '/_LOG_FILE=/ && !start { start = $0 } { print; last = $0 }
            END { print start > seen; print last > seen }' \
        | gzip | encrypt > "$partial/dump.sql.gz.cms" && encrypted=1 || encrypted=""
    (cd "$partial" && sha256sum dump.sql.gz.cms > SHA256SUMS)
    start_of "$seen" > "$partial/start"
    # mysqldump writes its last line only when it finished.
    if [ -z "$encrypted" ] || ! tail -n 1 "$seen" | grep -q '^-- Dump completed' \
        || ! grep -q . "$partial/start"; then
        rm -rf "$partial"
        echo "backup: the dump of $DB_NAME at $stamp did not check out" >&2
        return 1
    fi
    mv "$partial" "$backups/$stamp"
    # The previous chain ends where this dump starts.
    ship_binlogs "$previous" "$(cut -d ' ' -f 1 "$backups/$stamp/start")"
    echo "backup: dumped $DB_NAME to $stamp ($(wc -c < "$backups/$stamp/dump.sql.gz.cms") bytes, encrypted)" >&2
    list | head -n "-$BACKUP_KEEP" | while read -r old; do
        rm -rf "${backups:?}/$old"
        echo "backup: removed dump $old (BACKUP_KEEP=$BACKUP_KEEP)" >&2
    done
}

# A dump is whole when its checksum holds, it decrypts (which also proves
# it unchanged: AES-GCM; on its own, as a pipe would hide openssl's status),
# and it decompresses to mysqldump's last line, written only when it finished.
check_dump() {
    (cd "$1" && sha256sum --check --quiet SHA256SUMS) \
        && decrypt "$1/dump.sql.gz.cms" > /dev/null \
        && decrypt "$1/dump.sql.gz.cms" | gzip -dc | tail -n 1 | grep -q '^-- Dump completed'
}

# A dump to restore: it exists and checks out, and so do its binary logs;
# a moment, if given, reads as one and is not before the dump.
verify() {
    chain="$backups/$1" moment="${2:-}"
    case "$1" in
        */* | .* | '') refuse "no dump named '$1'; the dumps kept: $(list | tr '\n' ' ')" ;;
    esac
    [ -f "$chain/dump.sql.gz.cms" ] || refuse "no dump named '$1'; the dumps kept: $(list | tr '\n' ' ')"
    check_dump "$chain" || refuse "dump $1 is damaged (truncated or corrupted): refusing it"
    if [ -f "$chain/binlogs/SHA256SUMS" ]; then
        (cd "$chain/binlogs" && sha256sum --check --quiet SHA256SUMS) \
            || refuse "a binary log of dump $1 is damaged: refusing it"
        for name in $(shipped "$chain"); do
            decrypt "$chain/binlogs/$name.cms" > /dev/null \
                || refuse "binary log $name of dump $1 is damaged: refusing it"
        done
    fi
    taken=$(echo "$1" | sed 's/^\(....\)\(..\)\(..\)T\(..\)\(..\)\(..\)Z$/\1-\2-\3 \4:\5:\6/')
    taken_here=$(date -d "$taken UTC" '+%Y-%m-%d %H:%M:%S %Z')
    if [ -n "$moment" ]; then
        # Read in the site's time zone (TZ), as its users see the time;
        # mysqlbinlog gets it in UTC.
        echo "$moment" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$' \
            || refuse "the moment must read 'YYYY-MM-DD HH:MM:SS' (the site's time, ${TZ:-UTC}), not '$moment'"
        seconds=$(date -d "$moment" +%s 2>/dev/null) || refuse "there is no moment '$moment' in ${TZ:-UTC}"
        utc=$(date -u -d "@$seconds" '+%Y-%m-%d %H:%M:%S')
        if expr "$utc" \< "$taken" >/dev/null; then
            refuse "$moment $(date -d "$moment" +%Z) is before dump $1 was taken ($taken_here): choose an earlier dump"
        fi
    fi
    echo "backup: dump $1 (taken $taken_here) checks out" >&2
}

refuse() {
    echo "backup: $1" >&2
    exit 1
}

# The SQL of a restore, on standard output: a fresh database, the dump
# loaded into it, then the binary logs replayed. Whoever runs it must keep
# it out of the binary log (sql_log_bin=0, as restore.sh does): a fresh dump
# afterwards starts the next chain.
replay() {
    verify "$1" "$2"
    chain="$backups/$1"
    echo "backup: the SQL that restores $DB_NAME from dump $1" >&2
    name="\`$DB_NAME\`"
    printf 'DROP DATABASE IF EXISTS %s;\nCREATE DATABASE %s CHARACTER SET utf8mb4;\nUSE %s;\n' \
        "$name" "$name" "$name"
    decrypt "$chain/dump.sql.gz.cms" | gzip -dc
    logs=$(shipped "$chain")
    if [ -n "$logs" ]; then
        read -r _ position < "$chain/start"
        echo "backup: and the SQL of $(echo "$logs" | wc -l) binary logs${moment:+ up to $moment ($utc UTC)}" >&2
        # A failing mysqlbinlog leaves a line that is not SQL, so that the
        # mysql that runs this fails too.
        # The logged changes run as new ones (--skip-gtids): with GTIDs, a
        # server that ran them once would skip them silently.
        gtids=""
        ! supports mysqlbinlog --skip-gtids || gtids=--skip-gtids
        # mysqlbinlog reads files: the plain logs go to the private tmpfs.
        mkdir "$work/binlogs"
        for log in $logs; do
            decrypt "$chain/binlogs/$log.cms" > "$work/binlogs/$log"
        done
        # shellcheck disable=SC2086  # one file name per word; no word when empty
        (cd "$work/binlogs" && TZ=UTC mysqlbinlog --database="$DB_NAME" --start-position="$position" \
            $gtids ${moment:+"--stop-datetime=$utc"} $logs || echo "mysqlbinlog failed;")
        rm -rf "$work/binlogs"
    fi
}

# Seconds since dump $1 was written.
age_of() {
    echo $(($(date +%s) - $(stat -c %Y "$backups/$1/dump.sql.gz.cms")))
}

health() {
    newest=$(latest)
    [ -n "$newest" ] || { echo "backup: no good dump yet"; return 1; }
    age=$(age_of "$newest")
    echo "backup: last good dump $newest, $age s ago"
    [ "$age" -le $((BACKUP_INTERVAL + 3600)) ]
}

# The backups' state for the monitoring profile (docs/monitoring.md, "Metrics and
# alerts"), in node_exporter's text format: when the last round ($1) and the
# newest good dump succeeded (0: never), the dump's size, and the schedule
# they are held to. Written whole and renamed, so that it is never read half
# written; readable by all, as it holds no more than times and sizes, in a
# folder node_exporter reaches through $backups (forever() opens both).
write_metrics() {
    newest=$(latest) dumped=0 size=0
    if [ -n "$newest" ]; then
        dumped=$(stat -c %Y "$backups/$newest/dump.sql.gz.cms")
        size=$(stat -c %s "$backups/$newest/dump.sql.gz.cms")
    fi
    cat > "$backups/metrics/.backup.prom" <<EOF
# HELP backup_last_success_timestamp_seconds When a round (a dump, or copying the binary logs) last succeeded.
# TYPE backup_last_success_timestamp_seconds gauge
backup_last_success_timestamp_seconds $1
# HELP backup_last_dump_timestamp_seconds When the newest good dump was written.
# TYPE backup_last_dump_timestamp_seconds gauge
backup_last_dump_timestamp_seconds $dumped
# HELP backup_last_dump_size_bytes The newest good dump's size, compressed and encrypted.
# TYPE backup_last_dump_size_bytes gauge
backup_last_dump_size_bytes $size
# HELP backup_interval_seconds BACKUP_INTERVAL: a dump is due this long after the last.
# TYPE backup_interval_seconds gauge
backup_interval_seconds $BACKUP_INTERVAL
# HELP backup_binlog_interval_seconds BINLOG_INTERVAL: the binary logs are copied this often.
# TYPE backup_binlog_interval_seconds gauge
backup_binlog_interval_seconds $BINLOG_INTERVAL
EOF
    chmod 644 "$backups/metrics/.backup.prom"
    mv "$backups/metrics/.backup.prom" "$backups/metrics/backup.prom"
}

# A failure is loud in the log and tried again at the next round; the
# healthcheck turns unhealthy when the last good dump gets too old, and the
# metrics show it. Each round is a fresh run of this script, where any
# failing step stops it.
forever() {
    trap 'exit 0' TERM INT
    # Others may pass through $backups (a volume made before the image said
    # so too), not list it, to metrics/: every dump stays its owner's alone.
    chmod 711 "$backups"
    mkdir -p "$backups/metrics"
    chmod 755 "$backups/metrics"
    succeeded=0
    while :; do
        newest=$(latest)
        if [ -z "$newest" ] || [ "$(age_of "$newest")" -ge "$BACKUP_INTERVAL" ]; then
            task=now what="dump $DB_NAME"
        else
            task=ship what="copy the binary logs"
        fi
        if sh "$0" backup "$task"; then
            succeeded=$(date +%s)
        else
            echo "backup: FAILED to $what (see above); the last good dump is ${newest:-none}; trying again in $BINLOG_INTERVAL s" >&2
        fi
        write_metrics "$succeeded"
        sleep "$BINLOG_INTERVAL" &
        wait $!
    done
}

# 4. Become the command.
case "${1:-} ${2:-}" in
    "backup forever") require_settings && forever ;;
    "backup list") list ;;
    "backup health") require_settings && health ;;
    "backup "*)
        require_settings
        render_options
        check_server
        lock
        case "$2" in
            now) dump ;;
            ship)
                ship_binlogs "$(latest)"
                if [ -n "$broken" ]; then
                    echo "backup: $broken; dumping now" >&2
                    dump
                fi
                ;;
            verify) read_key && verify "${3:-}" "${4:-}" ;;
            replay) read_key && replay "${3:-}" "${4:-}" ;;
            *) echo "backup: no command '$2' (forever, now, ship, list, health, verify, replay)" >&2 && exit 1 ;;
        esac
        ;;
    *) exec "$@" ;;
esac
