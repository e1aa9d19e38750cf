#!/bin/sh
# Installs the prebuilt `switchboard` for this machine from a GitHub release:
#
#   curl -fsSL https://github.com/switchboard-dev/switchboard/releases/latest/download/install.sh | sh
#
# SWITCHBOARD_VERSION (a tag, e.g. v0.1.0; default: the latest release), SWITCHBOARD_INSTALL_DIR
# (default: ~/.local/bin) and SWITCHBOARD_DOWNLOAD_BASE (where the archives are; default: the
# release's download address) change what it does. It checks each archive's SHA-256.
set -eu

repo="https://github.com/switchboard-dev/switchboard"
version="${SWITCHBOARD_VERSION:-latest}"
dir="${SWITCHBOARD_INSTALL_DIR:-$HOME/.local/bin}"

say() { printf 'switchboard install: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

case "$(uname -s)" in
  Linux) os=unknown-linux-musl ;;
  Darwin) os=apple-darwin ;;
  *) die "no prebuilt binary for $(uname -s); build from source: cargo install --locked --path crates/switchboard (Windows: use WSL)" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) die "no prebuilt binary for $(uname -m); build from source: cargo install --locked --path crates/switchboard" ;;
esac
target="$arch-$os"

if [ -n "${SWITCHBOARD_DOWNLOAD_BASE:-}" ]; then
  base="$SWITCHBOARD_DOWNLOAD_BASE"
elif [ "$version" = latest ]; then
  base="$repo/releases/latest/download"
else
  base="$repo/releases/download/$version"
fi

fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL "$1" -o "$2"
  elif command -v wget >/dev/null 2>&1; then
    wget -q "$1" -O "$2"
  else
    die "needs curl or wget to download"
  fi
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM
archive="switchboard-$target.tar.gz"
say "downloading $base/$archive"
fetch "$base/$archive" "$tmp/$archive" || die "cannot download $base/$archive"
fetch "$base/$archive.sha256" "$tmp/$archive.sha256" || die "cannot download its checksum"
want="$(cut -d' ' -f1 < "$tmp/$archive.sha256")"
got="$(sha256 "$tmp/$archive")"
[ "$want" = "$got" ] || die "checksum mismatch for $archive: expected $want, got $got"
tar xzf "$tmp/$archive" -C "$tmp"
mkdir -p "$dir"
install -m 0755 "$tmp/switchboard-$target/switchboard" "$dir/switchboard"
say "installed $("$dir/switchboard" --version) to $dir/switchboard"
case ":$PATH:" in
  *":$dir:"*) ;;
  *) say "add $dir to your PATH" ;;
esac
say "next: switchboard demo, then switchboard setup claude-code (or codex, cursor, claude-desktop)"
