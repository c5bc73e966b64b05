#!/usr/bin/env bash
# Sets a Debian machine up to run `cargo xtask … --container podman` and the real container test, for the
# user who runs it: podman, a container configuration that works in this kind of sandbox (root, through
# sudo), and a local image built from Debian packages (no image registry is reachable here), imported into
# that user's own podman storage (rootless for a user; podman storage is per user). Idempotent. Prints the
# image name.
#
# Why each setting (each was needed here; see ../shared/container/ for the first recipe):
# - runtime runc: crun 1.8 refuses this sandbox's hybrid cgroup layout ("cgroups in hybrid mode not supported").
# - default_ulimits = []: setting RLIMIT_NOFILE is not permitted here.
# - overlay storage (root: in its own graphroot): vfs copies the whole image per container (≈ 11 s a run vs 0.3 s).
# - uidmap (newuidmap) and subordinate ids: rootless podman maps the container's other ids to them.
set -euo pipefail
IMAGE=${IMAGE:-localhost/boxspec-bookworm}
ROOTFS=${ROOTFS:-/var/tmp/boxspec-rootfs-bookworm}
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
MIRROR=${MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)}
# sudo resets PATH (secure_path): only system programs run through it.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null ||
  ! command -v newuidmap >/dev/null; then
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap uidmap >/dev/null
fi
as_root mkdir -p /etc/containers
as_root tee /etc/containers/containers.conf >/dev/null <<'CONF'
[containers]
default_ulimits = []
cgroupns = "host"
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
as_root tee /etc/containers/storage.conf >/dev/null <<'CONF'
[storage]
driver = "overlay"
runroot = "/run/containers/boxspec-storage"
graphroot = "/var/lib/containers/boxspec-storage"
CONF
user=$(id -un)
if [ "$(id -u)" != 0 ] && ! grep -q "^$user:" /etc/subuid 2>/dev/null; then
  echo "error: $user has no subordinate ids in /etc/subuid (rootless podman needs them)" >&2
  exit 1
fi
if ! podman image exists "$IMAGE"; then
  if [ ! -x "$ROOTFS/usr/bin/gcc" ]; then
    as_root rm -rf "$ROOTFS"
    as_root debootstrap --variant=minbase --include=gcc,libc6-dev bookworm "$ROOTFS" "$MIRROR" >&2
  fi
  as_root tar -C "$ROOTFS" -c . | podman import - "$IMAGE" >&2
fi
podman run --rm --network=none "$IMAGE" true
echo "$IMAGE"
