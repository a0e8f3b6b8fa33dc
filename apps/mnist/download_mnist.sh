#!/bin/sh
# Fetches the four MNIST files into DIR (default data/mnist) and checks their md5.
#
#   apps/mnist/download_mnist.sh [DIR]
#
# Sources, in order: a local copy ($XGRAD_MNIST_DIR, then ../shared/data/mnist next to
# the repository), then public mirrors. A file is kept only when its md5 matches the
# published one, so a broken mirror or a truncated download can never be used.
# Exits non-zero with a message when no source works (e.g. no network).
set -u

DIR=${1:-data/mnist}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MIRRORS="https://ossci-datasets.s3.amazonaws.com/mnist
https://storage.googleapis.com/cvdf-datasets/mnist
http://yann.lecun.com/exdb/mnist"

FILES="train-images-idx3-ubyte.gz:f68b3c2dcbeaaa9fbdd348bbdeb94873
train-labels-idx1-ubyte.gz:d53e105ee54ea40749a09fcbcd1e9432
t10k-images-idx3-ubyte.gz:9fb629c4189551a2d022fa330f9573f3
t10k-labels-idx1-ubyte.gz:ec29112dd5afa0611ce80d1b7f02629c"

md5_of() { md5sum "$1" 2>/dev/null | cut -d' ' -f1; }

fetch() {  # url dest
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --connect-timeout 10 --max-time 300 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q --timeout=10 -O "$2" "$1"
  else
    echo "download_mnist.sh: neither curl nor wget is installed" >&2
    return 1
  fi
}

mkdir -p "$DIR" || { echo "download_mnist.sh: cannot create $DIR" >&2; exit 1; }
failed=0
for entry in $FILES; do
  name=${entry%%:*}
  sum=${entry##*:}
  dest="$DIR/$name"
  if [ -f "$dest" ] && [ "$(md5_of "$dest")" = "$sum" ]; then
    echo "$dest: present, md5 ok"
    continue
  fi
  ok=0
  for local_dir in ${XGRAD_MNIST_DIR:-} "$REPO/../shared/data/mnist"; do
    if [ -f "$local_dir/$name" ] && [ "$(md5_of "$local_dir/$name")" = "$sum" ]; then
      cp "$local_dir/$name" "$dest.part" && mv "$dest.part" "$dest" && ok=1
      echo "$dest: copied from $local_dir, md5 ok"
      break
    fi
  done
  if [ $ok = 0 ]; then
    for mirror in $MIRRORS; do
      if fetch "$mirror/$name" "$dest.part"; then
        if [ "$(md5_of "$dest.part")" = "$sum" ]; then
          mv "$dest.part" "$dest" && ok=1
          echo "$dest: downloaded from $mirror, md5 ok"
          break
        fi
        echo "$mirror/$name: md5 mismatch, trying the next mirror" >&2
      else
        echo "$mirror/$name: download failed" >&2
      fi
    done
    rm -f "$dest.part"
  fi
  if [ $ok = 0 ]; then
    echo "download_mnist.sh: could not get $name from any source (no network?)." >&2
    failed=1
  fi
done
if [ $failed = 1 ]; then
  echo "download_mnist.sh: MNIST is incomplete in $DIR. Copy the four files there by hand, or" >&2
  echo "  use Fashion-MNIST: mnist train --dataset fashion-mnist (Debian package dataset-fashion-mnist)." >&2
  exit 1
fi
echo "MNIST is ready in $DIR"
