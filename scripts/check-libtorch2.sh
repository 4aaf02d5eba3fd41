#!/bin/bash
# Builds this source tree against LibTorch 2.6 (Debian trixie's libtorch-dev) inside a trixie chroot and runs
# ctest there; the host (bookworm) has LibTorch 1.13. A manual check, not part of CI. Needs root.
#
# Usage: scripts/check-libtorch2.sh [ctest arguments...]     e.g.  scripts/check-libtorch2.sh -E consumer
#   First run: debootstrap trixie into $LIGHTER_TRIXIE_ROOT (default /var/tmp/trixie) and install the packages
#   (about 1.7 GiB, a minute or two). Later runs reuse it. The tree is bind-mounted at /src and built in
#   <source>/build-libtorch2 (binaries there run only inside the chroot); the shared folder (fixtures) is
#   bind-mounted at /shared so that /src/../shared resolves as the tests expect. Everything mounted is
#   unmounted on exit. Runs are serialised with a lock on the chroot, so worktrees can share it.
# Environment: LIGHTER_TRIXIE_ROOT (chroot folder), LIGHTER_SHARED_DIR (default: <source>/../shared, or the
#   main worktree's ../shared when <source> is a linked worktree), JOBS (build jobs, default 2),
#   BUILD_TYPE (default Release).
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "check-libtorch2.sh: needs root (debootstrap, chroot, mount)" >&2; exit 1; }

src=$(cd "$(dirname "$0")/.." && pwd)
R=${LIGHTER_TRIXIE_ROOT:-/var/tmp/trixie}
jobs=${JOBS:-2}
build_type=${BUILD_TYPE:-Release}
ready="$R/.lighter-libtorch2-ready"   # written once the packages are installed
packages="libtorch-dev nlohmann-json3-dev libspdlog-dev catch2 cmake g++ make libopenblas0-openmp zlib1g-dev"

# The tests read <source>/../shared/fixtures. A linked worktree (/work/wt/x) has no ../shared of its own, so fall
# back to the one beside the main worktree.
shared=${LIGHTER_SHARED_DIR:-}
if [ -z "$shared" ]; then
  if [ -d "$src/../shared" ]; then
    shared=$(cd "$src/../shared" && pwd)
  elif common=$(git -C "$src" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) &&
       [ -d "$(dirname "$common")/../shared" ]; then
    shared=$(cd "$(dirname "$common")/../shared" && pwd)
  fi
fi
[ -n "$shared" ] || echo "check-libtorch2.sh: warning: no shared folder found; fixture tests will fail" >&2

log() { echo "check-libtorch2.sh: $*"; }
# A clean environment inside the chroot: the host's PATH, TMPDIR, ... need not exist there.
in_chroot() {
  chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 TERM="${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive "$@"
}

# One run at a time per chroot, creation included (the lock lives beside it).
mkdir -p "$(dirname "$R")"
exec 9>"$R.lock"
flock 9 || exit 1

# ---- the chroot (created only if missing) ------------------------------------------------------------------
if [ ! -x "$R/usr/bin/apt-get" ]; then
  if [ -e "$R" ] && [ -n "$(ls -A "$R" 2>/dev/null)" ]; then
    # Never rm -rf here: a leftover bind mount would take the source tree with it.
    echo "check-libtorch2.sh: $R exists but is not a finished chroot; unmount anything under it and remove it" >&2
    exit 1
  fi
  command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get install -y debootstrap; }
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  log "debootstrap trixie into $R from ${mirror:=http://deb.debian.org/debian}"
  debootstrap --variant=minbase --include=ca-certificates \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg trixie "$R" "$mirror"
fi

# ---- mounts, undone on exit ----------------------------------------------------------------------------------
mounted=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mount_at() {  # mount_at TARGET mount-args...
  local target=$1; shift
  mkdir -p "$target"
  # We hold the lock, so a mount already here is left over from a killed run: replace it.
  if mountpoint -q "$target"; then umount "$target" || umount -l "$target"; fi
  mount "$@" "$target"
  mounted+=("$target")
}
mount_at "$R/proc" -t proc proc
mount_at "$R/dev" --bind /dev
mount_at "$R/src" --bind "$src"
if [ -n "$shared" ]; then mount_at "$R/shared" --bind "$shared"; fi

if [ ! -e "$ready" ]; then
  log "installing $packages"
  in_chroot apt-get update
  # shellcheck disable=SC2086
  in_chroot apt-get install -y --no-install-recommends $packages  # `make` must be named: cmake does not pull it
  touch "$ready"
fi
# shellcheck disable=SC2016  # ${Version} is dpkg-query's, not the shell's
log "LibTorch $(in_chroot dpkg-query -W -f='${Version}' libtorch-dev), source $src, fixtures ${shared:-none}"

# ---- configure, build, test -----------------------------------------------------------------------------------
in_chroot cmake -S /src -B /src/build-libtorch2 -DCMAKE_BUILD_TYPE="$build_type"
in_chroot cmake --build /src/build-libtorch2 -j"$jobs"
status=0
in_chroot ctest --test-dir /src/build-libtorch2 --output-on-failure -j"$jobs" "$@" || status=$?
exit "$status"
