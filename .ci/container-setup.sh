#!/usr/bin/env bash
# Sets a Debian machine up to run `cargo xtask … --container podman` and the real container test:
# podman, a container configuration that works in this kind of sandbox, and a local image built from
# Debian packages (no image registry is reachable here). Idempotent; needs root. Prints the image name.
#
# Why each setting (each was needed here; see ../shared/container/ for the first recipe):
# - runtime runc: crun 1.8 refuses this sandbox's hybrid cgroup layout ("cgroups in hybrid mode not supported").
# - default_ulimits = []: setting RLIMIT_NOFILE is not permitted here.
# - overlay storage in its own graphroot: vfs copies the whole image per container (≈ 11 s a run vs 0.3 s).
set -euo pipefail
IMAGE=${IMAGE:-localhost/boxspec-bookworm}
ROOTFS=${ROOTFS:-/var/tmp/boxspec-rootfs-bookworm}
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
MIRROR=${MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)}

# uidmap (newuidmap): rootless podman, which .ci/ownership-as-user.sh runs the ownership test with.
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null ||
  ! command -v newuidmap >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap uidmap >/dev/null
fi
mkdir -p /etc/containers
cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = []
cgroupns = "host"
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
cat > /etc/containers/storage.conf <<'CONF'
[storage]
driver = "overlay"
runroot = "/run/containers/boxspec-storage"
graphroot = "/var/lib/containers/boxspec-storage"
CONF
if ! podman image exists "$IMAGE"; then
  if [ ! -x "$ROOTFS/usr/bin/gcc" ]; then
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase --include=gcc,libc6-dev bookworm "$ROOTFS" "$MIRROR" >&2
  fi
  tar -C "$ROOTFS" -c . | podman import - "$IMAGE" >&2
fi
podman run --rm --network=none "$IMAGE" true
echo "$IMAGE"
