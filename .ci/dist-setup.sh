#!/usr/bin/env bash
# Sets a Debian machine up to run an sccache-dist build server for the distributed tests
# (xtask/tests/dist.rs): bubblewrap (>= 0.3), the sandbox sccache-dist's overlay builder needs, and a check
# that root can use it. Root only (apt, and the build server itself runs as root): run it with sudo.
# Idempotent. Prints bwrap's path.
set -euo pipefail
if ! [ -x /usr/bin/bwrap ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq bubblewrap >/dev/null
fi
/usr/bin/bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all /bin/true
echo /usr/bin/bwrap
