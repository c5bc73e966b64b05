#!/usr/bin/env bash
# Makes this machine look to the test suite as a GitHub-hosted runner does (.ci/run calls it as root):
# - an unprivileged user (default `runner`) with passwordless sudo, and sudo's `secure_path` (Debian's
#   default line, like GitHub's ubuntu image): sudo does not keep the user's PATH;
# - rustup in that user's ~/.cargo/bin, with the image's `stable` preinstalled (this machine's own, linked:
#   sccache asks rustup about it), then the workflows' toolchain step as dtolnay/rust-toolchain runs it:
#   `rustup toolchain install <rust-toolchain.toml channel> --profile minimal --component <its components>`
#   and `rustup default`, downloaded for real;
# - XDG_RUNTIME_DIR and subordinate ids for rootless podman;
# - a copy of this working tree (tracked and untracked files, and .git; not target/ or dist/) in a fresh
#   checkout the user owns, at GitHub's path layout (~/work/<repo>/<repo>).
# Prints the checkout's path. Idempotent: the user's HOME starts empty every run except the toolchains.
set -euo pipefail
cd "$(dirname "$0")/.."
user=${RUNNER_USER:-runner}
if [ "$(id -u)" != 0 ]; then
  echo "error: $0 needs root (it makes the user $user)" >&2
  exit 1
fi

if ! command -v sudo >/dev/null || ! command -v newuidmap >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo uidmap >/dev/null
fi
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --user-group "$user"
fi
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
echo "$user ALL=(ALL) NOPASSWD:ALL" >"/etc/sudoers.d/90-$user"
chmod 440 "/etc/sudoers.d/90-$user"
grep -q '^Defaults[[:space:]]*secure_path=' /etc/sudoers ||
  echo 'Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' >>/etc/sudoers
for file in /etc/subuid /etc/subgid; do
  if ! grep -q "^$user:" "$file" 2>/dev/null; then
    start=$(awk -F: 'BEGIN { e = 100000 } $2 + $3 > e { e = $2 + $3 } END { print e }' "$file" 2>/dev/null || echo 100000)
    echo "$user:$start:65536" >>"$file"
  fi
done
install -d -m 700 -o "$user" -g "$user" "/run/user/$uid"

# This machine's rustup (root's PATH may lack ~/.cargo/bin).
rustup=$(command -v rustup || echo "${CARGO_HOME:-$HOME/.cargo}/bin/rustup")

as_user() {
  runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" LANG=C.UTF-8 \
    PATH="$home/.cargo/bin:/usr/local/bin:/usr/bin:/bin" "$@"
}

# A fresh HOME, but for the toolchains (the image's and the one the workflow step downloads).
find "$home" -mindepth 1 -maxdepth 1 ! -name .rustup ! -name .cargo -exec rm -rf {} +
find "$home/.cargo" -mindepth 1 -maxdepth 1 ! -name bin -exec rm -rf {} + 2>/dev/null || true
if [ ! -x "$home/.cargo/bin/rustup" ]; then
  install -m 755 "$rustup" /tmp/rustup-init.$$
  as_user /tmp/rustup-init.$$ -y --no-modify-path --default-toolchain none --profile minimal >&2
  rm -f /tmp/rustup-init.$$
fi
# The image's stable: this machine's, outside /root (mode 700), hard-linked where it can be.
stable_sysroot=$(realpath "$("$rustup" run stable rustc --print sysroot)")
image_stable=/opt/runner-image-rust-stable
if [ ! -x "$image_stable/bin/rustc" ]; then
  rm -rf "$image_stable.tmp"
  cp -al "$stable_sysroot" "$image_stable.tmp" 2>/dev/null || cp -a "$stable_sysroot" "$image_stable.tmp"
  mv "$image_stable.tmp" "$image_stable"
fi
host=$("$rustup" run stable rustc -vV | sed -n 's/^host: //p')
# rustup-init with no default toolchain makes no toolchains/ folder (rustup 1.28 here).
as_user mkdir -p "$home/.rustup/toolchains"
as_user ln -sfn "$image_stable" "$home/.rustup/toolchains/stable-$host"

# The workflow's toolchain step (what dtolnay/rust-toolchain runs for `toolchain:` and `components:`).
channel=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
components=$(sed -n 's/^components = \[\(.*\)\]/\1/p' rust-toolchain.toml | tr -d '" ' )
as_user rustup toolchain install "$channel" --profile minimal ${components:+--component "$components"} \
  --no-self-update >&2
as_user rustup default "$channel" >&2

# The checkout, the user's own, with new file times (a fresh clone's).
repo=$(basename "$PWD")
checkout="$home/work/$repo/$repo"
install -d -o "$user" -g "$user" "$home/work" "$home/work/$repo" "$checkout"
{ git ls-files -z --cached --others --exclude-standard; printf '.git\0'; } |
  tar --null --files-from=- --ignore-failed-read -c |
  as_user tar -x -m -C "$checkout"
echo "$checkout"
