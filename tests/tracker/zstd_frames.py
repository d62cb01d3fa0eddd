#!/usr/bin/env python3
"""zstd_frames.py FILE - the zstd frames of a version 3 trace file (after
its 256-byte header), found from the frame and block headers alone (the
zstd format, RFC 8878), without decompressing: one line per complete frame
"frame OFFSET END", then "complete END" (the end of the last complete
frame) and "size SIZE". An independent check of where the reader says a
cut file's readable part ends."""
import struct
import sys

HEADER = 256
MAGIC = 0xFD2FB528


def frames(data):
    pos = HEADER
    while pos + 6 <= len(data):
        start = pos
        if struct.unpack_from("<I", data, pos)[0] != MAGIC:
            raise SystemExit("no zstd frame at byte %d" % pos)
        fhd = data[pos + 4]
        pos += 5
        fcs_flag, single, checksum, dict_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
        pos += 0 if single else 1
        pos += (0, 1, 2, 4)[dict_flag]
        pos += (1 if single else 0, 2, 4, 8)[fcs_flag]
        while True:
            if pos + 3 > len(data):
                return
            h = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
            last, kind, size = h & 1, (h >> 1) & 3, h >> 3
            pos += 3 + (1 if kind == 1 else size)
            if last:
                break
        pos += 4 if checksum else 0
        if pos > len(data):
            return
        yield start, pos


data = open(sys.argv[1], "rb").read()
end = HEADER
for start, stop in frames(data):
    print("frame %d %d" % (start, stop))
    end = stop
print("complete %d" % end)
print("size %d" % len(data))
