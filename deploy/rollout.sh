#!/bin/sh
# Deploy the code of this checkout to the running compose project without stranding a run:
# new worker containers start beside the old ones, their build becomes the worker
# deployment's current version once they poll, and the old containers stop only when no
# open run is pinned to their build. docs/operations.md "Deploying a new worker build".
#
#   deploy/rollout.sh [options of `manage.py temporal_deployment rollout`]
#   e.g. deploy/rollout.sh --ramp 10,50 --ramp-interval 300 --drain-timeout 1800
#
# Steps: build the image; migrate; start as many new workers as run now (`--scale`, old
# containers kept); in a new one, `temporal_deployment rollout` (waits until the new build
# polls every queue the current one polls, ramps if asked, makes it current, waits until
# the old build has no open pinned run); stop and remove the old workers; replace web.
#
# If the rollout fails or times out, the script stops there: old and new workers both keep
# running, which is safe (docs/operations.md says how to go on or back).
#
# The first `docker compose up` needs none of this: the first worker makes its own build
# current. DOCKER names the docker CLI (default: docker); STOP_TIMEOUT the seconds an old
# worker gets to finish its activities (default 75, the compose file's stop_grace_period).
set -eu
cd "$(dirname "$0")/.."
docker=${DOCKER:-docker}
stop_timeout=${STOP_TIMEOUT:-75}
compose() { "$docker" compose "$@"; }

old=$(compose ps -q worker)
count=$(printf '%s\n' "$old" | grep -c . || true)
if [ "$count" -eq 0 ]; then
    echo "no worker container runs: start the project first (docker compose up -d)" >&2
    exit 1
fi

echo "== building the image"
compose build
echo "== migrating"
compose run --rm --no-deps migrate
echo "== starting $count new worker(s) beside the old"
compose up -d --no-deps --no-recreate --scale "worker=$((count * 2))" worker
new=$(compose ps -q worker | grep -vxF "$old" || true)
first=$(printf '%s\n' "$new" | head -n 1)
if [ -z "$first" ]; then
    echo "no new worker container started; the old ones still run" >&2
    exit 1
fi

echo "== moving new runs to the new build, then waiting for the old build to drain"
if ! "$docker" exec "$first" python manage.py temporal_deployment rollout "$@"; then
    echo "rollout did not finish: old workers ($(echo $old)) and new ($(echo $new)) all" \
        "still run. See docs/operations.md \"Deploying a new worker build\"." >&2
    exit 1
fi

echo "== stopping the old workers"
for container in $old; do
    "$docker" stop --time "$stop_timeout" "$container"
    "$docker" rm "$container"
done
compose up -d --no-deps --no-recreate --scale "worker=$count" worker
echo "== replacing web"
compose up -d --no-deps web
echo "== done"
