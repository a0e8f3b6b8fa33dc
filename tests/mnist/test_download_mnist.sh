#!/bin/sh
# apps/mnist/download_mnist.sh with a local copy in a folder whose name has spaces, and
# no network (XGRAD_MNIST_MIRRORS empty):
#  - the files are copied from that folder (its path is one path, not split into words)
#    into a destination whose name has a space too, and are the published files;
#  - a copy that fails (here: a file-size limit below every file) is reported as a
#    failure, never as "md5 ok", leaves no file behind, and the script exits non-zero.
# Usage: test_download_mnist.sh SCRIPT MNIST_DIR. Exits 77 (skipped) when MNIST_DIR lacks
# the four .gz files.
set -u
script=$1
mnist=${2:-}  # empty when configured with -DXGRAD_MNIST_DIR= : skipped below
files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz
t10k-labels-idx1-ubyte.gz"
for f in $files; do
  if [ ! -f "$mnist/$f" ]; then
    echo "skipped: no $mnist/$f (configure with -DXGRAD_MNIST_DIR=DIR)"
    exit 77
  fi
done

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
copy="$tmp/my mnist copy"
mkdir "$copy" || exit 1
for f in $files; do
  ln -s "$mnist/$f" "$copy/$f" || exit 1
done

failures=0
fail() {
  echo "FAIL: $1"
  failures=$((failures + 1))
}

# 1. A local copy in a folder with spaces, into a folder with a space.
out=$(XGRAD_MNIST_DIR=$copy XGRAD_MNIST_MIRRORS='' sh "$script" "$tmp/data dir" 2>&1)
status=$?
echo "$out"
[ $status = 0 ] || fail "the copy from '$copy' exits $status, not 0"
for f in $files; do
  echo "$out" | grep -qxF "$tmp/data dir/$f: copied from $copy, md5 ok" ||
    fail "$f is not reported as copied from '$copy'"
  cmp -s "$mnist/$f" "$tmp/data dir/$f" || fail "$tmp/data dir/$f is not the file of $mnist"
done
echo "$out" | grep -qxF "MNIST is ready in $tmp/data dir" || fail "no 'MNIST is ready' line"

# 2. Every copy fails (a file-size limit of 2 KiB, below the smallest file's 4.5 KB):
# reported, nothing claimed, nothing left, exit 1. The shared copy next to the
# repository fails the same way, and there are no mirrors.
out=$( (ulimit -f 4 && XGRAD_MNIST_DIR=$copy XGRAD_MNIST_MIRRORS='' sh "$script" "$tmp/full") 2>&1)
status=$?
echo "$out"
[ $status = 1 ] || fail "failed copies exit $status, not 1"
if echo "$out" | grep -q "md5 ok"; then fail "a failed copy is reported as 'md5 ok'"; fi
for f in $files; do
  echo "$out" | grep -qF "copying $copy/$f to $tmp/full/$f failed" ||
    fail "the failed copy of $f is not reported"
  [ ! -e "$tmp/full/$f" ] || fail "$tmp/full/$f exists after a failed copy"
  [ ! -e "$tmp/full/$f.part" ] || fail "$tmp/full/$f.part is left behind"
done
echo "$out" | grep -qF "MNIST is incomplete in $tmp/full" || fail "no 'MNIST is incomplete' line"

if [ $failures != 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
