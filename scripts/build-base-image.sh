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
  echo "error: $tag can't be pulled, and building it from Debian packages (mmdebstrap or debootstrap) needs root: run 'sudo bash scripts/build-base-image.sh' once, or load $tag into the engine" >&2
  exit 1
fi

root=$(mktemp -d /tmp/lab-base.XXXXXX)
# --one-file-system: a run cut short may leave the host's /proc, /sys or /dev mounted in the root.
trap 'rm -rf --one-file-system "$root"' EXIT
# mmdebstrap (apt's own downloads and one dpkg run: 15 s here) where it is installed, else debootstrap (27 s).
if command -v mmdebstrap >/dev/null; then
  echo "base image $tag: building from $suite packages (mmdebstrap, about 15 s)"
  mmdebstrap --quiet --variant=minbase --mode=root "$suite" "$root" "$mirror"
elif command -v debootstrap >/dev/null; then
  echo "base image $tag: building from $suite packages (debootstrap, about 30 s)"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >/dev/null
else
  echo "error: neither mmdebstrap nor debootstrap is installed: apt-get install mmdebstrap" >&2
  exit 1
fi
# Same trimming as the official slim image: no docs, caches or downloaded packages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$tag" >/dev/null
echo "base image $tag: imported"
