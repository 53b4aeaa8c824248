#!/bin/sh
# Roll the app code in this folder onto the running stack, with no failed
# request:  ./deploy.sh   (./deploy.sh --help: this text)
#
# 1. Build the new image.
# 2. Migrate. A release's migrations must leave the schema usable by the
#    code still running (expand, then contract; see README.md).
# 3. Start as many new replicas as are running, beside the old ones, and
#    wait until each passes its healthcheck. The web servers find them
#    through Docker's DNS within seconds.
# 4. Stop the old replicas one at a time: each refuses new connections at
#    once (the web servers send those requests to another replica) and
#    finishes the requests it accepted.
# If a new replica fails its healthcheck, the new ones are removed, the old
# ones keep serving, and this exits non-zero. An interrupt (Ctrl-C, a TERM) before
# step 4 removes the new replicas too; during step 4 it finishes stopping
# the old ones, as the new ones serve: either way as many replicas run as
# before, and it exits 130. Migrations that ran stay (step 2's rule makes
# that safe). To roll back, check out the previous release and run this again.
set -eu
cd "$(dirname "$0")"

# Seconds a new replica may take to pass its healthcheck (its start period).
HEALTHY_WITHIN=90

replicas() {
    docker compose ps --quiet app
}

# The replicas that were not running when this started, started or not.
new_replicas() {
    docker compose ps --all --quiet app | grep -v -x -F "$old" || true
}

fail() {
    echo "deploy: FAILED: $1" >&2
    exit 1
}

# The new replicas' health, until all are healthy (0) or one is not (1);
# what it waits for, every 10 s.
wait_until_healthy() {
    started=$(date +%s) note=10
    for container in "$@"; do
        while :; do
            state=$(docker inspect --format '{{.State.Health.Status}} {{.RestartCount}}' "$container")
            case "$state" in
                "healthy "*) break ;;
                "unhealthy "* | *" "[1-9]*) return 1 ;; # failing, or crashed and restarted
            esac
            waited=$(($(date +%s) - started))
            [ "$waited" -lt "$HEALTHY_WITHIN" ] || return 1
            if [ "$waited" -ge "$note" ]; then
                echo "deploy: waiting for new replica $container to turn healthy ($waited s of $HEALTHY_WITHIN)"
                note=$((note + 10))
            fi
            sleep 1
        done
    done
}

# Stop and remove the new replicas; with "logs", show the end of each one's log.
remove_new() {
    for container in $(new_replicas); do
        echo "deploy: removing new replica $container" >&2
        [ "${1:-}" != logs ] || docker logs --tail 20 "$container" >&2
        docker stop "$container" >/dev/null
        docker rm "$container" >/dev/null
    done
}

# Stop the old replicas that still run, one at a time.
retire_old() {
    for container in $old; do
        docker inspect "$container" >/dev/null 2>&1 || continue
        echo "deploy: stopping old replica $container"
        docker stop "$container" >/dev/null
        docker rm "$container" >/dev/null
    done
}

# Ctrl-C (or a TERM, or the terminal closing): leave as many replicas as
# before, serving. A second interrupt does not cut this short.
interrupted() {
    trap '' INT TERM HUP
    case "$phase" in
        prepare) echo "deploy: interrupted before any new replica; the old ones keep serving" >&2 ;;
        start)
            echo "deploy: interrupted; removing the new replicas, the old ones keep serving" >&2
            remove_new
            ;;
        retire)
            echo "deploy: interrupted while the new replicas serve; stopping the old ones first" >&2
            retire_old
            ;;
    esac
    echo "deploy: interrupted; $count replicas run" >&2
    exit 130
}

case "$#:${1:-}" in
    0:) ;;
    1:-h | 1:--help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        exit 0 ;;
    *)
        echo "deploy: takes no argument, not '$*' (./deploy.sh --help)" >&2
        exit 2 ;;
esac

old=$(replicas)
if [ -z "$old" ]; then
    echo "deploy: no app replica is running; start the stack first: docker compose up -d --wait" >&2
    exit 1
fi
count=$(echo "$old" | wc -l)
phase=prepare
trap interrupted INT TERM HUP

echo "deploy: building the new image"
docker compose build app migrate || fail "the build failed (above); nothing changed"

echo "deploy: migrating"
docker compose run --rm --no-deps migrate \
    || fail "the migrations failed (above); the old replicas keep serving"

phase=start
echo "deploy: starting $count new replicas beside the $count running"
docker compose up --detach --no-deps --no-recreate --scale "app=$((count * 2))" app \
    || { remove_new logs; fail "the new replicas did not start (above); the old ones keep serving"; }

# shellcheck disable=SC2046  # one container id per word
if ! wait_until_healthy $(new_replicas); then
    echo "deploy: a new replica failed its healthcheck; the old replicas keep serving" >&2
    remove_new logs
    fail "the new code did not pass its healthcheck"
fi

phase=retire
retire_old
echo "deploy: done; $count replicas run the new code"
