#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Seeds are small on purpose (4 KiB blocks, a few blocks per disk) so that libFuzzer
mutates structure rather than megabytes of data. They are crafted here from the
VHD specification with Python's standard library alone, independently of the Rust
code under test; scripts/fuzz-smoke.sh also adds fixtures/ and ../shared/interop
files as read-only corpora when they exist.

Usage: python3 fuzz/seeds.py [corpus-dir]   (default: fuzz/corpus)
"""

import gzip
import hashlib
import io
import json
import os
import struct
import sys
import tarfile

SECTOR = 512
# The separator between layers in the vhd_chain target's input (leaf first).
LAYER_SEP = b"LAYER-->"
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z


def checksum(b, at):
    b = bytearray(b)
    b[at:at + 4] = b"\0\0\0\0"
    return (~sum(b)) & 0xFFFFFFFF


def chs(size):
    """CHS geometry as in the specification's appendix."""
    sectors = min(size // SECTOR, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = sectors // spt
    else:
        spt = 17
        cth = sectors // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = sectors // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = sectors // spt
    return struct.pack(">HBB", cth // heads, heads, spt)


def footer(disk_type, size, data_offset, uid, creator=b"tap\0", hidden=0):
    b = bytearray(512)
    b[0:8] = b"conectix"
    struct.pack_into(">IIQI", b, 8, 2, 0x00010000, data_offset, 0x2B000000)
    b[28:32] = creator
    struct.pack_into(">I", b, 32, 0x00010003)
    b[36:40] = b"Wi2k"
    struct.pack_into(">QQ", b, 40, size, size)
    b[56:60] = chs(size)
    struct.pack_into(">I", b, 60, disk_type)
    b[68:84] = uid
    b[85] = hidden
    struct.pack_into(">I", b, 64, checksum(b, 64))
    return bytes(b)


def header(table_offset, entries, block_size, parent_uid=b"\0" * 16, parent_name="", locators=()):
    b = bytearray(1024)
    b[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", b, 8, 0xFFFFFFFFFFFFFFFF, table_offset, 0x00010000, entries, block_size)
    b[40:56] = parent_uid
    name = parent_name.encode("utf-16-be")[:512]
    b[64:64 + len(name)] = name
    for i, (code, space, length, off) in enumerate(locators):
        at = 576 + 24 * i
        b[at:at + 4] = code
        struct.pack_into(">IIIQ", b, at + 4, space, length, 0, off)
    struct.pack_into(">I", b, 36, checksum(b, 36))
    return bytes(b)


def uid(n):
    return hashlib.md5(b"cloudimg-fuzz-%d" % n).digest()


def sector(tag, n):
    return (struct.pack(">II", tag, n) * 64)[:SECTOR]


def dynamic(size, block_size, allocated, n, parent=None, sparse_bitmaps=False, batmap=False):
    """A dynamic (or differencing, when parent=(uid, name)) disk.

    allocated: block indexes that get data; sparse_bitmaps: only every other sector
    of an allocated block is marked present (as in a differencing child)."""
    spb = block_size // SECTOR
    bitmap_len = ((spb + 7) // 8 + SECTOR - 1) // SECTOR * SECTOR
    entries = (size + block_size - 1) // block_size
    table_offset = 512 + 1024
    bat_len = (entries * 4 + SECTOR - 1) // SECTOR * SECTOR
    pos = table_offset + bat_len
    locators = []
    loc_data = b""
    if parent is not None:
        puid, pname = parent
        w2ku = pname.encode("utf-16-le")
        w2ru = ("./" + pname).encode("utf-16-le")
        macx = ("file://./" + pname).encode("utf-8")
        for code, data in ((b"W2ku", w2ku), (b"W2ru", w2ru), (b"MacX", macx)):
            space = (len(data) + SECTOR - 1) // SECTOR * SECTOR
            locators.append((code, space, len(data), pos + len(loc_data)))
            loc_data += data.ljust(space, b"\0")
        pos += len(loc_data)
    bat = [0xFFFFFFFF] * entries
    blocks = b""
    for blk in sorted(allocated):
        bat[blk] = (pos + len(blocks)) // SECTOR
        if sparse_bitmaps:
            bm = bytes([0xAA]) * ((spb + 7) // 8)
        else:
            bm = b"\xff" * (spb // 8) + (bytes([(0xFF << (8 - spb % 8)) & 0xFF]) if spb % 8 else b"")
        blocks += bm.ljust(bitmap_len, b"\0")
        for s in range(spb):
            blocks += sector(n, blk * spb + s)
    dtype = 4 if parent is not None else 3
    f = footer(dtype, size, 512, uid(n))
    h = header(table_offset, entries, block_size,
               parent_uid=parent[0] if parent else b"\0" * 16,
               parent_name=parent[1] if parent else "",
               locators=locators)
    batb = b"".join(struct.pack(">I", e) for e in bat).ljust(bat_len, b"\xff")
    img = f + h + batb + loc_data + blocks
    if batmap:
        # tapdisk's optional batmap: header sector then a bitmap of full blocks.
        bm_off = len(img) + SECTOR
        bmh = bytearray(SECTOR)
        bmh[0:8] = b"tdbatmap"
        struct.pack_into(">QIII", bmh, 8, bm_off, 1, 0x00010002, 0)
        img += bytes(bmh) + bytes([0xFF]).ljust(SECTOR, b"\0")
    return img + f


def fixed(size, n):
    data = b"".join(sector(n, s) for s in range(size // SECTOR))
    return data + footer(2, size, 0xFFFFFFFFFFFFFFFF, uid(n))


def tar_of(members, fmt=tarfile.USTAR_FORMAT, prefix="./"):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for name, data in members:
            ti = tarfile.TarInfo(prefix + name)
            ti.size = len(data)
            ti.mtime = VHD_EPOCH
            t.addfile(ti, io.BytesIO(data))
    return out.getvalue()


def write(corpus, target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    bs = 4096
    base = dynamic(32768, bs, [0, 2, 3, 7], 1)
    base_fixed = fixed(16384, 2)
    child = dynamic(32768, bs, [0, 1, 7], 3, parent=(uid(1), "1.vhd"), sparse_bitmaps=True)
    grandchild = dynamic(32768, bs, [3], 4, parent=(uid(3), "1.vhd"), sparse_bitmaps=True)
    empty = dynamic(65536, bs, [], 5)
    odd = dynamic(9 * SECTOR, SECTOR * 4, [0, 2], 6)  # partial last block
    with_batmap = dynamic(16384, bs, [0, 1], 7, batmap=True)
    big_block = dynamic(4 << 20, 2 << 20, [], 8)  # the common 2 MiB block, nothing allocated
    hidden = footer(2, 4096, 0xFFFFFFFFFFFFFFFF, uid(9), hidden=1)
    images = {
        "dynamic": base, "fixed": base_fixed, "diff": child, "diff2": grandchild,
        "empty": empty, "odd": odd, "batmap": with_batmap, "bigblock": big_block,
        "hidden-fixed": b"\0" * 4096 + hidden,
        # Dynamic disk without the head copy of the footer (some writers truncate it).
        "no-head-footer": b"\0" * 512 + base[512:],
    }

    for name, img in images.items():
        write(corpus, "vhd_footer", name, img[-512:])
        if img[:8] == b"conectix":
            write(corpus, "vhd_header", name, img[512:1536] + img[1536:1536 + 2048])
        write(corpus, "vhd_image", name, img)
    write(corpus, "vhd_chain", "diff-base", child + LAYER_SEP + base)
    write(corpus, "vhd_chain", "three", grandchild + LAYER_SEP + child + LAYER_SEP + base)
    write(corpus, "vhd_chain", "diff-fixed", child + LAYER_SEP + base_fixed)
    write(corpus, "vhd_chain", "single", base)

    # XenServer packages (./0.vhd leaf ... ./N-1.vhd base), a legacy name set, an OVA.
    xs = tar_of([("0.vhd", child), ("1.vhd", base)])
    xs_gnu = tar_of([("1.vhd", base), ("0.vhd", child)], fmt=tarfile.GNU_FORMAT)
    legacy = tar_of([("snap.vhd", child), ("image.vhd", base)], prefix="")
    ovf = (b'<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" '
           b'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References>'
           b'<File ovf:id="file1" ovf:href="disk.vhd"/></References><DiskSection>'
           b'<Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="32768" '
           b'ovf:format="http://technet.microsoft.com/en-us/virtualserver/bb676673.aspx"/>'
           b'</DiskSection></Envelope>')
    mf = ("SHA256(disk.ovf)= %s\nSHA256(disk.vhd)= %s\n" % (
        hashlib.sha256(ovf).hexdigest(), hashlib.sha256(base).hexdigest())).encode()
    ova = tar_of([("disk.ovf", ovf), ("disk.mf", mf), ("disk.vhd", base)], prefix="")
    evil = tar_of([("../escape.vhd", base), ("/abs.vhd", base)], prefix="")
    for name, t in (("xenserver", xs), ("gnu", xs_gnu), ("legacy", legacy), ("ova", ova), ("evil", evil)):
        write(corpus, "tar_read", name, t)
        write(corpus, "ova_unpack", name + ".tgz", gzip.compress(t, 1))
        write(corpus, "ova_unpack", name + ".tar", t)
    write(corpus, "ova_ovf", "ovf", ovf)
    # Gzip: single member, multi-member (what parallel compressors write), empty.
    blob = base + child
    members = b"".join(gzip.compress(blob[i:i + 8192], 6) for i in range(0, len(blob), 8192))
    for name, g in (("one", gzip.compress(blob, 9)), ("multi", members), ("empty", gzip.compress(b"")),
                    ("fast", gzip.compress(xs, 1))):
        write(corpus, "gzip_read", name, g)

    # Swift JSON: a container listing, an SLO manifest (as stored and as PUT), errors.
    listing = [
        {"name": "u.vhd-00001", "hash": "d41d8cd98f00b204e9800998ecf8427e", "bytes": 1048576000,
         "content_type": "application/octet-stream", "last_modified": "2024-01-02T03:04:05.000000"},
        {"subdir": "u.vhd/"},
        {"name": "u.vhd", "hash": "d41d8cd98f00b204e9800998ecf8427e", "bytes": 0,
         "content_type": "application/octet-stream;swift_bytes=2097152000",
         "last_modified": "2024-01-02T03:04:05.000000", "symlink_path": "/v1/AUTH_x/c/o"},
    ]
    write(corpus, "swift_listing", "listing", json.dumps(listing).encode())
    write(corpus, "swift_listing", "empty", b"[]")
    slo_put = [{"path": "/c_segments/u.vhd/slo/00000001", "etag": "d41d8cd98f00b204e9800998ecf8427e",
                "size_bytes": 1048576},
               {"path": "/c_segments/u.vhd/slo/00000002", "etag": None, "size_bytes": None,
                "range": "0-99"}]
    slo_get = [{"name": "/c_segments/u.vhd/slo/00000001", "hash": "d41d8cd98f00b204e9800998ecf8427e",
                "bytes": 1048576, "content_type": "application/octet-stream",
                "last_modified": "2024-01-02T03:04:05.000000"}]
    write(corpus, "slo_manifest", "put", json.dumps(slo_put).encode())
    write(corpus, "slo_manifest", "get", json.dumps(slo_get).encode())
    # Glance task inputs.
    tasks = {
        "import": {"type": "import", "input": {"import_from": "c/o.vhd", "import_from_format": "vhd",
                                                "image_properties": {"name": "n"}}},
        "export": {"type": "export", "input": {"image_uuid": "0b1e1b5c-7f51-4a8e-9b6c-3f1f0b2b9c11",
                                                "receiving_swift_container": "exports"}},
        "bad": {"type": "import", "input": {"import_from": "c/o", "image_properties": {"os_type": "windows"}}},
    }
    for name, t in tasks.items():
        write(corpus, "task_input", name, json.dumps(t).encode())
    # HTTP answers as a Swift or S3 server sends them.
    http = {
        "length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nEtag: abc\r\n\r\nhello",
        "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: v\r\n\r\n",
        "close": b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        "nobody": b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
        "short": b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100\r\n\r\nab",
    }
    for name, d in http.items():
        write(corpus, "http_response", name, d)
    # Keystone token documents.
    ep = lambda i, u, r="RegionOne": {"interface": i, "url": u, "region": r, "region_id": r}
    token = {"token": {"catalog": [
        {"type": "identity", "endpoints": [ep("public", "http://127.0.0.1:5000/v3")]},
        {"type": "object-store", "endpoints": [
            ep("internal", "http://10.0.0.1:8080/v1/AUTH_p"),
            ep("public", "http://127.0.0.1:8080/v1/AUTH_p", "RegionTwo"),
            ep("public", "https://swift.example/v1/AUTH_p")]}]}}
    write(corpus, "keystone_catalog", "token", json.dumps(token).encode())
    write(corpus, "keystone_catalog", "empty", b'{"token": {"catalog": []}}')
    # S3 answers.
    s3 = {
        "list": "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a/b</Key>"
                "<Size>5</Size><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag></Contents>"
                "</ListBucketResult>",
        "initiate": "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
                    "<UploadId>id-1</UploadId></InitiateMultipartUploadResult>",
        "uploads": "<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>u1</UploadId></Upload>"
                   "<Upload><Key>k2</Key><UploadId>u2</UploadId></Upload></ListMultipartUploadsResult>",
        "parts": "<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>1"
                 "</NextPartNumberMarker><Part><PartNumber>1</PartNumber><ETag>\"AB\"</ETag>"
                 "<Size>5242880</Size></Part></ListPartsResult>",
        "complete": "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag></CompleteMultipartUploadResult>",
        "error": "<Error><Code>SlowDown</Code><Message>m</Message></Error>",
    }
    for name, d in s3.items():
        write(corpus, "s3_xml", name, ('<?xml version="1.0" encoding="UTF-8"?>' + d).encode())


if __name__ == "__main__":
    main()
