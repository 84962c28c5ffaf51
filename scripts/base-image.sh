#!/usr/bin/env bash
# Builds a stand-in for python:3.x-slim from Debian packages, because no image hub is reachable
# here. Reused when the image already exists. Usage: scripts/base-image.sh [NAME]
set -euo pipefail
name=${1:-dashscale-test-base:bookworm}
if docker image inspect "$name" >/dev/null 2>&1; then
  echo "base image $name: present"
  exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
dir=$(mktemp -d /tmp/dashscale-base.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mirror=$(grep -hoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
echo "base image $name: building from Debian bookworm ($mirror), about a minute"
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates,passwd,adduser \
  bookworm "$dir" "$mirror" >/tmp/dashscale-debootstrap.log 2>&1 \
  || { tail -n 20 /tmp/dashscale-debootstrap.log; exit 1; }
cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
rm -f "$dir"/usr/lib/python3*/EXTERNALLY-MANAGED
ln -sf /usr/bin/python3 "$dir/usr/local/bin/python"
ln -sf /usr/bin/pip3 "$dir/usr/local/bin/pip"
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
tar -C "$dir" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$name" >/dev/null
echo "base image $name: built"
