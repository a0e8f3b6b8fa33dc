#!/bin/sh
# Fetches the four MNIST files into DIR (default data/mnist) and checks their md5.
#
#   apps/mnist/download_mnist.sh [DIR]
#
# Sources, in order: a local copy ($XGRAD_MNIST_DIR, then ../shared/data/mnist next to
# the repository), then public mirrors ($XGRAD_MNIST_MIRRORS, one URL per line, replaces
# the built-in list; set it empty for no download). A file is kept only when its md5
# matches the published one, so a broken mirror, a truncated download or a failed copy
# can never be used. Exits non-zero with a message when no source works (e.g. no network).
set -u
set -f  # no globbing: paths and URLs are used as given

DIR=${1:-data/mnist}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PUBLIC_MIRRORS="https://ossci-datasets.s3.amazonaws.com/mnist
https://storage.googleapis.com/cvdf-datasets/mnist
http://yann.lecun.com/exdb/mnist"
MIRRORS=${XGRAD_MNIST_MIRRORS-$PUBLIC_MIRRORS}
NEWLINE='
'

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

# Copies $name from the folder $1 to $dest when it is there with the right md5; the
# copy's md5 is checked too. Returns 0 when $dest now holds the file.
copy_from() {
  [ -n "$1" ] && [ -f "$1/$name" ] && [ "$(md5_of "$1/$name")" = "$sum" ] || return 1
  if cp "$1/$name" "$dest.part" && [ "$(md5_of "$dest.part")" = "$sum" ] &&
    mv "$dest.part" "$dest"; then
    echo "$dest: copied from $1, md5 ok"
    return 0
  fi
  echo "download_mnist.sh: copying $1/$name to $dest failed" >&2
  rm -f "$dest.part"
  return 1
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
  if copy_from "${XGRAD_MNIST_DIR:-}" || copy_from "$REPO/../shared/data/mnist"; then
    ok=1
  fi
  if [ $ok = 0 ]; then
    saved_ifs=$IFS
    IFS=$NEWLINE  # one mirror per line
    for mirror in $MIRRORS; do
      IFS=$saved_ifs
      if fetch "$mirror/$name" "$dest.part"; then
        if [ "$(md5_of "$dest.part")" = "$sum" ]; then
          if mv "$dest.part" "$dest"; then
            ok=1
            echo "$dest: downloaded from $mirror, md5 ok"
            break
          fi
          echo "download_mnist.sh: moving $dest.part to $dest failed" >&2
        else
          echo "$mirror/$name: md5 mismatch, trying the next mirror" >&2
        fi
      else
        echo "$mirror/$name: download failed" >&2
      fi
    done
    IFS=$saved_ifs
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
