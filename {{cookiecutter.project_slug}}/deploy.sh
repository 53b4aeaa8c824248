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
# ones keep serving, and this exits non-zero. To roll back, check out the
# previous release and run this again.
set -eu
cd "$(dirname "$0")"

# Seconds a new replica may take to pass its healthcheck (its start period).
HEALTHY_WITHIN=90

replicas() {
    docker compose ps --quiet app
}

# The new replicas' health, until all are healthy (0) or one is not (1).
wait_until_healthy() {
    deadline=$(($(date +%s) + HEALTHY_WITHIN))
    for container in "$@"; do
        while :; do
            state=$(docker inspect --format '{{.State.Health.Status}} {{.RestartCount}}' "$container")
            case "$state" in
                "healthy "*) break ;;
                "unhealthy "* | *" "[1-9]*) return 1 ;; # failing, or crashed and restarted
            esac
            [ "$(date +%s)" -lt "$deadline" ] || return 1
            sleep 1
        done
    done
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

echo "deploy: building the new image"
docker compose build app migrate

echo "deploy: migrating"
docker compose run --rm --no-deps migrate

echo "deploy: starting $count new replicas beside the $count running"
docker compose up --detach --no-deps --no-recreate --scale "app=$((count * 2))" app
new=$(replicas | grep -v -x -F "$old")

# shellcheck disable=SC2086  # one container id per word
if ! wait_until_healthy $new; then
    echo "deploy: a new replica failed its healthcheck; the old replicas keep serving" >&2
    for container in $new; do
        echo "deploy: removing new replica $container; its log:" >&2
        docker logs --tail 20 "$container" >&2
        docker stop "$container" >/dev/null
        docker rm "$container" >/dev/null
    done
    exit 1
fi

for container in $old; do
    echo "deploy: stopping old replica $container"
    docker stop "$container" >/dev/null
    docker rm "$container" >/dev/null
done
echo "deploy: done; $count replicas run the new code"
