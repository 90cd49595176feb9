#!/usr/bin/env bash
# Builds the Debian base image from Debian packages when no container
# registry can be reached, under the tag the Dockerfile expects, so the
# normal `docker build` works on top of it either way.
set -euo pipefail

tag="${1:-debian:bookworm-slim}"
suite="bookworm"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag: present"
  exit 0
fi
if timeout 60 docker pull "$tag" >/dev/null 2>&1; then
  echo "base image $tag: pulled"
  exit 0
fi

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # Reuse the host's own Debian mirror: it is the one known to be reachable.
  mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
             | grep -oE 'https?://[^ ]+' | head -n1 || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: $tag can't be pulled, and building it from Debian packages (debootstrap) needs root: run 'sudo bash scripts/build-base-image.sh' once, or load $tag into the engine" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }

root=$(mktemp -d /tmp/lab-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base image $tag: building from $suite packages (debootstrap, about a minute)"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >/dev/null
# Same trimming as the official slim image: no docs or caches.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$tag" >/dev/null
echo "base image $tag: imported"
