#!/usr/bin/env bash
# Makes sure a Docker engine answers. On a Debian-based host where we are
# root, installs what is missing of Debian's docker.io and mmdebstrap (the
# base image where no registry answers), with --compose also docker-compose
# (the Compose test), in one apt run (none when nothing is missing), and
# starts dockerd; elsewhere says what to do in one line.
set -euo pipefail

with_compose=0
case "${1:-}" in
  --compose) with_compose=1 ;;
  "") ;;
  *) echo "usage: $0 [--compose]" >&2; exit 2 ;;
esac

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  if [ -z "${DOCKER_HOST:-}" ] && ! command -v dockerd >/dev/null && ! engine_answers; then
    missing+=(docker.io iptables)
  fi
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  [ "$with_compose" = 0 ] || command -v docker-compose >/dev/null || missing+=(docker-compose)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "docker engine: installing Debian's ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

if command -v docker >/dev/null && engine_answers; then
  echo "docker engine: running"
  exit 0
fi
if [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ] && [ ! -w /var/run/docker.sock ]; then
  echo "error: permission denied on /var/run/docker.sock: add your user to the docker group (sudo usermod -aG docker \$USER, then log in again) or set DOCKER_HOST" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null || [ -n "${DOCKER_HOST:-}" ]; then
  echo "error: no Docker engine answers${DOCKER_HOST:+ at $DOCKER_HOST}; install and start Docker (https://docs.docker.com/engine/install/), then retry" >&2
  exit 1
fi
if ! pgrep -x dockerd >/dev/null; then
  echo "docker engine: starting dockerd (log: /var/log/lab-dockerd.log)"
  # A session of its own: the engine must outlive the shell, job or CI step that started it
  # (a process group's kill took it, and every lab, with it).
  setsid -f dockerd >>/var/log/lab-dockerd.log 2>&1 </dev/null
fi
for _ in $(seq 1 60); do
  engine_answers && { echo "docker engine: running"; exit 0; }
  sleep 1
done
echo "error: dockerd did not answer within 60 s; see /var/log/lab-dockerd.log" >&2
exit 1
