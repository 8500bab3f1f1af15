"""A PLY header checked against the file's length before plyfile reads a byte of data.

A hostile or truncated PLY can declare billions of vertices; plyfile would then try to allocate
them (or overflow). Every element's rows need at least a known number of bytes (binary: the sum of
its property sizes, a list counting only its length field; ASCII: one digit and one separator per
property), so a count that cannot fit in the bytes present is refused first.
"""

from __future__ import annotations

from pathlib import Path

from spatial.errors import file_error

SIZES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
         "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}
MAX_HEADER = 1 << 16


def check_ply_header(path: Path) -> None:
    """Raise a one-line error naming `path` unless it is a PLY whose declared rows fit in its length."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(MAX_HEADER)
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    except OSError as e:
        raise file_error(path, f"cannot read ({e.strerror or e})") from None
    end = head.find(b"end_header")
    newline = head.find(b"\n", end)
    if not head.startswith(b"ply") or end < 0 or newline < 0:
        raise file_error(path, "not a readable PLY file (expected a 'ply' ... 'end_header' header)")
    body = size - (newline + 1)
    binary, elements = True, []  # [name, count, bytes per row at least]
    for line in head[:end].decode("ascii", errors="replace").splitlines():
        parts = line.split()
        if parts[:1] == ["format"] and len(parts) > 1:
            binary = parts[1] != "ascii"
        elif parts[:1] == ["element"]:
            if len(parts) != 3 or not parts[2].isdigit():
                raise file_error(path, f"not a readable PLY: bad header line {line.strip()[:80]!r}")
            elements.append([parts[1], int(parts[2]), 0])
        elif parts[:1] == ["property"] and elements and len(parts) >= 3:
            kind = parts[2] if parts[1] == "list" else parts[1]
            elements[-1][2] += SIZES.get(kind, 1) if binary else 2
    for name, count, row in elements:
        need = count * max(row, 1)
        if need > body:
            raise file_error(path, f"its header declares {count:,} {name} rows (at least {need:,} bytes) but only "
                                   f"{body:,} bytes follow it: the file is truncated or damaged")
        body -= need
