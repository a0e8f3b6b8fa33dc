#!/usr/bin/python3
"""Writes the hand-made IDX regression corpus and its manifest EXPECTED.tsv.

Each file is a case the reader must handle: every bad one must give a
std::runtime_error whose message contains the expected text (test_idx.cpp checks
it); files named ok_* must parse. Files the fuzzer found are added by hand to
EXPECTED.tsv (crash-*, their expected message).  Run: /usr/bin/python3 make_corpus.py
"""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def idx(dims, payload=None, typ=0x08):
    head = bytes([0, 0, typ, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    if payload is None:
        n = 1
        for d in dims:
            n *= d
        payload = bytes((i * 7) % 256 for i in range(n))
    return head + payload


def gz(b):
    return gzip.compress(b, mtime=0)


def flip(g, a, b):
    return g[:a] + bytes(x ^ 0x5A for x in g[a:b]) + g[b:]


def zero_crc(g):
    return g[:-8] + bytes(4) + g[-4:]


labels = idx([5], bytes([0, 1, 2, 3, 9]))
images = idx([2, 28, 28])
cases = {
    # name: (bytes, expected message part, what the case is)
    "ok_labels.idx": (labels, "OK"),
    "ok_images.idx": (images, "OK"),
    "ok_images.idx.gz": (gz(images), "OK"),
    "ok_two_members.idx.gz": (gz(images[:100]) + gz(images[100:]), "OK"),
    "empty.idx": (b"", "truncated header: 0 bytes"),
    "short_magic.idx": (b"\x00\x00", "truncated header: 2 bytes"),
    "short_dims.idx": (bytes([0, 0, 8, 3]) + struct.pack(">I", 2) + b"\x00\x00", "truncated header"),
    "wrong_magic.idx": (b"\x89PNG\r\n\x1a\n" + bytes(100), "not an IDX file"),
    "text_file.idx": (b"hello, this is not MNIST\n", "not an IDX file"),
    "bad_type_code.idx": (idx([5], bytes(5), typ=0x07), "unknown element type"),
    "float_type.idx": (idx([2], bytes(8), typ=0x0D), "element type is float32"),
    "rank_zero.idx": (bytes([0, 0, 8, 0]), "rank 0 is not supported"),
    "rank_nine.idx": (bytes([0, 0, 8, 9]) + bytes(36), "rank 9 is not supported"),
    "zero_dim.idx": (idx([0, 28, 28], b""), "dimension 0 is zero"),
    "truncated_payload.idx": (images[:-10], "truncated: the header says 2x28x28 = 1568 bytes"),
    "trailing_bytes.idx": (images + b"\x00" * 3, "3 bytes after the 2x28x28 data"),
    "absurd_sizes.idx": (idx([0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], b""), "more than the limit"),
    "absurd_count.idx.gz": (gz(idx([0x7FFFFFFF, 28, 28], bytes(784))), "more than the limit"),
    "lying_count.idx.gz": (gz(idx([60000, 28, 28], bytes(784 * 3))), "the decompressed file has 2352"),
    "gzip_truncated.idx.gz": (gz(images)[:40], "gzip stream is truncated"),
    "gzip_corrupt.idx.gz": (flip(gz(images), 20, 40), "corrupt gzip data"),
    "gzip_bad_crc.idx.gz": (zero_crc(gz(images)), "corrupt gzip data"),
    "gzip_garbage_after.idx.gz": (gz(images) + b"garbage!", "corrupt gzip data"),
    # Zero bytes after the last member are padding (GNU gzip ignores them); zeros and
    # then anything else are not.
    "ok_images_zero_padded.idx.gz": (gz(images) + bytes(512), "OK"),
    "gzip_zeros_then_garbage.idx.gz": (gz(images) + bytes(16) + b"garbage!", "corrupt gzip data"),
    "gzip_extra_data.idx.gz": (gz(images + b"\x01\x02"), "more decompressed data"),
    "gzip_only_magic.idx.gz": (b"\x1f\x8b", "gzip stream is truncated"),
    "gzip_of_text.idx.gz": (gz(b"not an idx file at all"), "not an IDX file"),
    # Expectation-dependent cases, checked with the MNIST images/labels expectations:
    "images_wrong_rows.idx": (idx([1, 27, 28]), "dimension 1 is 27, expected 28"),
    "labels_rank3.idx": (idx([1, 28, 28]), "has 3 dimensions, expected 1"),
    "labels_out_of_range.idx": (idx([3], bytes([1, 12, 3])), "label 12 at index 1"),
}

with open(os.path.join(HERE, "EXPECTED.tsv"), "w") as manifest:
    manifest.write("# file\tread as\texpected message part (OK = must parse)\n")
    for name, (data, expected) in sorted(cases.items()):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        kind = "labels" if name.startswith("labels") or name == "ok_labels.idx" else (
            "images" if name.startswith(("images", "ok_images", "ok_two")) else "any")
        manifest.write(f"{name}\t{kind}\t{expected}\n")
