#!/bin/sh
# Roll what changed in this folder onto the running stack, with no failed
# request:
#   ./deploy.sh                the app code (Django, its templates, its image)
#   ./deploy.sh <web server>   a web server's config or image, by its service's
#                              name in docker-compose.yml
#   ./deploy.sh --help         this text
#
# The app:
# 1. Build the new image.
# 2. Migrate. A release's migrations must leave the schema usable by the
#    code still running (expand, then contract; see README.md, "Scaling and deploying").
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
#
# A web server: build its new image, then replace its instances one at a
# time. Each old one stops gracefully (HAProxy sends new requests to the
# others); its replacement must pass its healthcheck (the entrypoint checks
# the config with the server's own checker) and be UP in HAProxy before the
# next one stops. If a replacement fails, it is removed, the instances not
# yet replaced keep serving the old config, and this exits non-zero with its
# log; fix the config and run this again, which brings back every instance.
# An interrupt finishes the instance being replaced, then stops (exit 130).
set -eu
cd "$(dirname "$0")"

# Seconds a new container may take to pass its healthcheck (its start period).
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
                echo "deploy: waiting for new container $container to turn healthy ($waited s of $HEALTHY_WITHIN)"
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

# The state of each instance of web server $1 in HAProxy, one line each (1:
# UP, 0: not): HAProxy's own metrics, asked from inside its container (the
# image has no curl; bash speaks HTTP enough).
instance_states() {
    # shellcheck disable=SC2016  # expanded inside the container
    docker compose exec -T haproxy bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$HAPROXY_METRICS_PORT"
        printf "GET /metrics?scope=server HTTP/1.0\r\n\r\n" >&3
        cat <&3' | sed -n "s/^haproxy_server_status{proxy=\"proxies\",server=\"$1[0-9]*\",state=\"UP\"} //p"
}

# Fill web server $web's count with new instances, and wait until each
# passes its healthcheck and HAProxy has every instance UP.
start_new_instance() {
    before=$(docker compose ps --all --quiet "$web")
    docker compose up --detach --no-deps --no-recreate --scale "$web=$wanted" "$web" \
        || fail "the new $web did not start (above); the instances not replaced keep serving"
    new=$(docker compose ps --all --quiet "$web" | grep -v -x -F "$before" || true)
    # shellcheck disable=SC2086  # one container id per word
    if [ -n "$new" ] && ! wait_until_healthy $new; then
        for failed in $new; do
            docker logs --tail 20 "$failed" >&2
            docker rm --force "$failed" >/dev/null
        done
        fail "the new $web failed its healthcheck (its log above); the instances not replaced keep serving; fix it and run ./deploy.sh $web again"
    fi
    waited=0
    until [ "$(instance_states "$web" | grep -c '^1$')" -ge "$wanted" ]; do
        [ "$waited" -lt 30 ] || fail "HAProxy has not every $web instance UP after 30 s (its stats page says why)"
        sleep 1
        waited=$((waited + 1))
    done
}

# Replace web server $1's instances one at a time with its new image.
roll_web_server() {
    web=$1
    # As many instances as HAProxy has servers for (docker-compose.yml runs
    # that many).
    wanted=$(instance_states "$web" | wc -l)
    if [ "$wanted" -eq 0 ]; then
        echo "deploy: HAProxy balances over no web server named '$web' (is the stack up? ./deploy.sh --help)" >&2
        exit 2
    fi
    old=$(docker compose ps --quiet "$web")
    echo "deploy: building the new $web image"
    docker compose build "$web" || fail "the build failed (above); nothing changed"
    # An interrupt lets the instance being replaced finish first.
    interrupt=no
    trap 'interrupt=yes' INT TERM HUP
    # First any place an earlier run left empty, then each old instance.
    start_new_instance
    for container in $old; do
        if [ "$interrupt" = yes ]; then
            echo "deploy: interrupted; the $web instances not replaced keep the old config" >&2
            exit 130
        fi
        echo "deploy: replacing $web instance $container"
        docker stop "$container" >/dev/null
        docker rm "$container" >/dev/null
        start_new_instance
    done
    echo "deploy: done; $wanted $web instances run the new image"
}

case "$#:${1:-}" in
    0:) ;;
    1:-h | 1:--help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        exit 0 ;;
    1:[!-]*)
        roll_web_server "$1"
        exit 0 ;;
    *)
        echo "deploy: takes nothing (the app) or a web server's name, not '$*' (./deploy.sh --help)" >&2
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
