#!/usr/bin/env bash
# Sets a Debian x86_64 machine up to build aarch64 artifacts and smoke-test them under emulation:
# - qemu user-mode emulation with Debian's aarch64 C and C++ libraries (/usr/aarch64-linux-gnu);
# - an aarch64 CPython sysroot for the wheel's tests, unpacked from Debian's arm64 packages. apt downloads
#   them with a private state directory, so the system's apt configuration (architectures) is untouched.
# Root only (apt, /opt): run it with sudo. The Rust target is the user's (`rustup target add`, .ci/run).
# Idempotent. Prints the sysroot.
set -euo pipefail
cd "$(dirname "$0")/.."
SYSROOT=${SYSROOT:-/opt/boxspec-aarch64-python}

if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user libc6-arm64-cross libstdc++6-arm64-cross >/dev/null
fi

if [ ! -x "$SYSROOT/usr/bin/python3" ]; then
  work=$(mktemp -d) && chmod 755 "$work"  # apt downloads as _apt
  opts=(-o APT::Architectures::=arm64 -o APT::Architecture=arm64
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  apt-get "${opts[@]}" update -qq >&2
  (cd "$work" && apt-get "${opts[@]}" download python3.11-minimal libpython3.11-minimal \
    libpython3.11-stdlib zlib1g libexpat1 >&2)
  rm -rf "$SYSROOT.tmp" && mkdir -p "$SYSROOT.tmp/lib/aarch64-linux-gnu"
  for deb in "$work"/*.deb; do dpkg -x "$deb" "$SYSROOT.tmp"; done
  cp -a /usr/aarch64-linux-gnu/lib/. "$SYSROOT.tmp/lib/aarch64-linux-gnu/"
  cp -a /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 "$SYSROOT.tmp/lib/"
  ln -sf python3.11 "$SYSROOT.tmp/usr/bin/python3"
  rm -rf "$SYSROOT" && mv "$SYSROOT.tmp" "$SYSROOT"
  rm -rf "$work"
fi
qemu-aarch64 -L "$SYSROOT" "$SYSROOT/usr/bin/python3" -c 'import platform; assert platform.machine() == "aarch64"'
echo "$SYSROOT"
