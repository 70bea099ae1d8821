//! Hand-made headers, each field annotated with its offset; the real tools'
//! files are in `tests/detect_real.rs`.

use super::verdict::is_host_path;
use super::*;
use crate::format::footer::Footer;
use crate::{DiskType, Geometry};
use uuid::Uuid;

/// `len` zero bytes with `fields` (offset, bytes) written in.
fn bytes(len: usize, fields: &[(usize, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; len];
    for (at, v) in fields {
        b[*at..*at + <[u8]>::len(v)].copy_from_slice(v);
    }
    b
}

fn whole(b: &[u8]) -> Detected {
    detect(b, &b[b.len().saturating_sub(512)..], b.len() as u64)
}

fn footer(kind: DiskType, size: u64) -> [u8; 512] {
    let mut f = Footer::new(kind, size, Uuid::from_u128(7), 0);
    f.geometry = Geometry::for_size(size);
    f.seal()
}

#[test]
fn fixed_vhd_is_known_by_its_tail_even_over_foreign_magic() {
    // A fixed disk whose guest data starts with a QCOW2 magic.
    let mut b = bytes(4096, &[(0, b"QFI\xfb\0\0\0\x03")]);
    b.extend_from_slice(&footer(DiskType::Fixed, 4096));
    let d = whole(&b);
    assert_eq!(d.format, Format::Vhd(VhdKind::Fixed));
    assert_eq!(d.virtual_size, Some(4096));
    assert!(d.hazards.is_empty());
    assert_eq!(d.not_vhd("the file", "x", Flow::Local), None);
}

#[test]
fn dynamic_vhd_with_a_cut_tail_is_known_by_its_head_copy() {
    let f = footer(DiskType::Dynamic, 1 << 20);
    let b = bytes(8192, &[(0, &f)]);
    assert_eq!(whole(&b).format, Format::Vhd(VhdKind::Dynamic));
}

#[test]
fn differencing_vhd_names_its_parent_and_host_path_locators() {
    let f = footer(DiskType::Differencing, 1 << 20);
    let name: Vec<u8> = "base.vhd"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let w2ku: Vec<u8> = "C:\\images\\base.vhd"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut b = bytes(
        8192,
        &[
            (0, &f),
            (512, b"cxsparse"),   // header.cookie at data_offset 512
            (512 + 64, &name),    // header.parent_name, UTF-16BE
            (512 + 576, b"W2ku"), // locator[0].code
            (512 + 576 + 4, &1u32.to_be_bytes()), // data_space: 1 sector
            (512 + 576 + 8, &(w2ku.len() as u32).to_be_bytes()), // data_length
            (512 + 576 + 16, &4096u64.to_be_bytes()), // data_offset
            (512 + 600, b"W2ru"), // locator[1]: data past the head given
            (512 + 600 + 8, &8u32.to_be_bytes()),
            (512 + 600 + 16, &(1u64 << 40).to_be_bytes()),
            (4096, &w2ku),
        ],
    );
    b.extend_from_slice(&f);
    let d = whole(&b);
    assert_eq!(d.format, Format::Vhd(VhdKind::Differencing));
    assert_eq!(
        d.hazards,
        vec![
            Hazard::NamesOtherFile {
                what: "parent".into(),
                name: Some("base.vhd".into()),
                host_path: false
            },
            Hazard::NamesOtherFile {
                what: "parent locator W2ku".into(),
                name: Some("C:\\images\\base.vhd".into()),
                host_path: true
            },
            Hazard::NamesOtherFile {
                what: "parent locator W2ru".into(),
                name: None,
                host_path: false
            },
        ]
    );
    assert!(d.names_other_files());
}

#[test]
fn qcow2_v3_backing_and_data_file() {
    let b = bytes(
        1024,
        &[
            (0, b"QFI\xfb"),                      // magic
            (4, &3u32.to_be_bytes()),             // version
            (8, &512u64.to_be_bytes()),           // backing_file_offset
            (16, &14u32.to_be_bytes()),           // backing_file_size
            (24, &(1u64 << 30).to_be_bytes()),    // size
            (72, &0b100u64.to_be_bytes()),        // incompatible: external data file
            (100, &112u32.to_be_bytes()),         // header_length
            (112, &0x4441_5441u32.to_be_bytes()), // extension: data file name
            (116, &9u32.to_be_bytes()),           // its length
            (120, b"/dev/sda1"),
            (136, &0u32.to_be_bytes()), // end of extensions (after 8-byte padding)
            (512, b"/etc/passwd.q2"),
        ],
    );
    let d = whole(&b);
    assert_eq!(d.format, Format::Qcow2);
    assert_eq!(d.virtual_size, Some(1 << 30));
    assert_eq!(
        d.hazards,
        vec![
            Hazard::NamesOtherFile {
                what: "backing file".into(),
                name: Some("/etc/passwd.q2".into()),
                host_path: true
            },
            Hazard::NamesOtherFile {
                what: "data file".into(),
                name: Some("/dev/sda1".into()),
                host_path: true
            },
        ]
    );
}

#[test]
fn qcow2_unknown_incompatible_feature_is_unsupported() {
    let b = bytes(
        512,
        &[
            (0, b"QFI\xfb\0\0\0\x03"),
            (72, &(1u64 << 40).to_be_bytes()), // incompatible: a bit qemu does not know
            (100, &104u32.to_be_bytes()),
        ],
    );
    let d = whole(&b);
    assert!(!d.names_other_files());
    assert!(
        matches!(&d.hazards[..], [Hazard::Unsupported { what }] if what.contains("0x10000000000"))
    );
}

#[test]
fn qcow_version_1_and_qed_backing() {
    let q1 = bytes(
        512,
        &[(0, b"QFI\xfb\0\0\0\x01"), (24, &4096u64.to_be_bytes())],
    );
    assert_eq!(whole(&q1).format, Format::Qcow);
    let qed = bytes(
        1024,
        &[
            (0, b"QED\0"),
            (16, &1u64.to_le_bytes()),    // features: has backing file
            (48, &8192u64.to_le_bytes()), // image_size
            (56, &600u32.to_le_bytes()),  // backing_filename_offset
            (60, &8u32.to_le_bytes()),    // backing_filename_size
            (600, b"base.img"),
        ],
    );
    let d = whole(&qed);
    assert_eq!((d.format, d.virtual_size), (Format::Qed, Some(8192)));
    assert_eq!(
        d.hazards,
        vec![Hazard::NamesOtherFile {
            what: "backing file".into(),
            name: Some("base.img".into()),
            host_path: false
        }]
    );
}

#[test]
fn vmdk_sparse_with_its_own_extent_is_clean_and_other_extents_are_not() {
    let own =
        b"# Disk DescriptorFile\ncreateType=\"monolithicSparse\"\nRW 2048 SPARSE \"disk.vmdk\"\n";
    let sparse = |desc: &[u8]| {
        bytes(
            4096,
            &[
                (0, b"KDMV"),
                (12, &2048u64.to_le_bytes()), // capacity, sectors
                (28, &1u64.to_le_bytes()),    // descriptorOffset, sectors
                (36, &2u64.to_le_bytes()),    // descriptorSize, sectors
                (512, desc),
            ],
        )
    };
    let d = whole(&sparse(own));
    assert_eq!(d.format, Format::Vmdk(VmdkKind::Sparse));
    assert_eq!(d.virtual_size, Some(1 << 20));
    assert_eq!(d.detail.as_deref(), Some("createType monolithicSparse"));
    assert!(d.hazards.is_empty(), "{:?}", d.hazards);

    let evil = b"createType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\n";
    let d = whole(&sparse(evil));
    assert!(d.names_other_files());
    assert!(d
        .hazards
        .iter()
        .any(|h| matches!(h, Hazard::Unsupported { what } if what.contains("monolithicFlat"))));
}

#[test]
fn vmdk_descriptor_names_its_extents() {
    let text = b"# Disk DescriptorFile\nversion=1\ncreateType=\"twoGbMaxExtentFlat\"\n\n# Extent description\nRW 4096 FLAT \"disk-f001.vmdk\" 0\nRW 2048 FLAT \"disk-f002.vmdk\" 0\nRW 1 ZERO\n";
    let d = whole(text);
    assert_eq!(d.format, Format::Vmdk(VmdkKind::Descriptor));
    assert_eq!(d.virtual_size, Some(6145 * 512));
    assert_eq!(d.hazards.len(), 2);
    assert_eq!(
        d.describe(),
        "a VMDK descriptor (createType twoGbMaxExtentFlat) that names other files: \
         extent 'disk-f001.vmdk', extent 'disk-f002.vmdk'"
    );
}

#[test]
fn vhdx_vdi_iso() {
    let creator: Vec<u8> = "qemu-img"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let vhdx = bytes(1024, &[(0, b"vhdxfile"), (8, &creator)]);
    let d = whole(&vhdx);
    assert_eq!(d.format, Format::Vhdx);
    assert_eq!(d.detail.as_deref(), Some("created by qemu-img"));

    let vdi = bytes(
        1024,
        &[
            (0, b"<<< Oracle VM VirtualBox Disk Image >>>\n"),
            (0x40, &0xbeda_107fu32.to_le_bytes()), // signature
            (0x4c, &2u32.to_le_bytes()),           // image type: fixed
            (0x170, &(64u64 << 20).to_le_bytes()), // disk size
        ],
    );
    let d = whole(&vdi);
    assert_eq!((d.format, d.virtual_size), (Format::Vdi, Some(64 << 20)));

    let iso = bytes(
        0x9000,
        &[
            (0x8000, b"\x01CD001"),           // primary volume descriptor
            (0x8028, b"CIDATA"),              // volume id
            (0x8050, &18u32.to_le_bytes()),   // volume space size, blocks
            (0x8080, &2048u16.to_le_bytes()), // logical block size
            (510, &[0x55, 0xaa]),             // an isohybrid MBR does not make it raw
        ],
    );
    let d = whole(&iso);
    assert_eq!(d.format, Format::Iso9660);
    assert_eq!(d.virtual_size, Some(18 * 2048));
    assert_eq!(d.detail.as_deref(), Some("volume 'CIDATA'"));
}

#[test]
fn compressors_by_magic() {
    // gzip with FNAME (flag 8) "disk.vhd".
    let gz = bytes(
        64,
        &[
            (0, &[0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3]),
            (10, b"disk.vhd\0"),
        ],
    );
    let d = whole(&gz);
    assert_eq!(d.format, Format::Gzip);
    assert_eq!(d.describe(), "gzip-compressed data (of 'disk.vhd')");
    let bz = bytes(64, &[(0, b"BZh9\x31\x41\x59\x26\x53\x59")]);
    assert_eq!(whole(&bz).format, Format::Bzip2);
    let xz = bytes(64, &[(0, b"\xfd7zXZ\0")]);
    assert_eq!(whole(&xz).format, Format::Xz);
    let zst = bytes(64, &[(0, &[0x28, 0xb5, 0x2f, 0xfd])]);
    assert_eq!(whole(&zst).format, Format::Zstd);
    // "BZh" alone is text, not bzip2.
    assert_eq!(whole(b"BZh9 hello").format, Format::Text);
}

#[test]
fn tar_flavours_and_ova() {
    let ustar = bytes(1024, &[(0, b"0.vhd"), (257, b"ustar\x0000")]);
    let d = whole(&ustar);
    assert_eq!(d.format, Format::Tar(TarKind::Ustar));
    assert_eq!(d.detail.as_deref(), Some("first member '0.vhd'"));
    let gnu = bytes(
        1536,
        &[
            (0, b"././@LongLink"),
            (156, b"L"), // typeflag: GNU long name in the next block
            (257, b"ustar  \0"),
            (512, b"a/very/long/name.vhd"),
        ],
    );
    let d = whole(&gnu);
    assert_eq!(d.format, Format::Tar(TarKind::Gnu));
    assert_eq!(
        d.detail.as_deref(),
        Some("first member 'a/very/long/name.vhd'")
    );
    let ova = bytes(1024, &[(0, b"vm.ovf"), (257, b"ustar\x0000")]);
    assert_eq!(whole(&ova).format, Format::Ova);
}

#[test]
fn ovf_text_html_raw_empty() {
    let ovf = br#"<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">"#;
    assert_eq!(whole(ovf).format, Format::Ovf);
    let d = whole(b"<!DOCTYPE html><html><body>403 Forbidden</body></html>\n");
    assert_eq!(
        (d.format, d.detail.as_deref()),
        (Format::Text, Some("an HTML page"))
    );
    let mbr = bytes(4096, &[(510, &[0x55, 0xaa])]);
    let d = whole(&mbr);
    assert_eq!(
        (d.format, d.detail.as_deref()),
        (Format::Raw, Some("MBR boot sector"))
    );
    let gpt = bytes(4096, &[(510, &[0x55, 0xaa]), (512, b"EFI PART")]);
    assert_eq!(whole(&gpt).detail.as_deref(), Some("GPT partition table"));
    assert_eq!(whole(&[]).format, Format::Empty);
    let short = bytes(142, &[(0, &[1, 2, 3])]);
    assert_eq!(
        whole(&short)
            .not_vhd("the file", "x.vhd", Flow::Local)
            .unwrap(),
        "the file is 142 bytes, too short for a VHD (a VHD ends in a 512-byte footer)"
    );
}

#[test]
fn messages_say_what_it_is_and_what_to_run() {
    let q = bytes(
        512,
        &[(0, b"QFI\xfb\0\0\0\x03"), (100, &104u32.to_be_bytes())],
    );
    let d = whole(&q);
    assert_eq!(
        d.not_vhd("the file", "imgs/disk.qcow2", Flow::Local)
            .unwrap(),
        "the file is a QCOW2 image (version 3), not a VHD; convert it with: \
         qemu-img convert -O vpc imgs/disk.qcow2 imgs/disk.vhd"
    );
    let vhdx = whole(&bytes(1024, &[(0, b"vhdxfile")]));
    assert_eq!(
        vhdx.not_vhd("the object", "swift://c/my disk.vhdx", Flow::Import)
            .unwrap(),
        "the object is a VHDX image (Hyper-V); Cloud Images imports VHD: convert it with \
         `qemu-img convert -O vpc 'my disk.vhdx' 'my disk.vhd'` and import the result"
    );
    let gz = whole(&bytes(64, &[(0, &[0x1f, 0x8b, 8, 0])]));
    assert_eq!(
        gz.not_vhd("the object", "c/disk.vhd.gz", Flow::Import)
            .unwrap(),
        "the object is gzip-compressed data; imports take the VHD itself, uncompressed: \
         decompress it (gunzip -k) and import the .vhd"
    );
    assert_eq!(
        gz.not_vhd("the file", "disk.vhd.gz", Flow::Local).unwrap(),
        "the file is gzip-compressed data, not a VHD; decompress it first: gunzip -k disk.vhd.gz \
         (a compressed tarball of VHDs goes to `cloudimg unpack`)"
    );
}

#[test]
fn short_and_hostile_inputs_never_panic() {
    // Every prefix of every header above, and offsets that point anywhere.
    let mut samples: Vec<Vec<u8>> = vec![
        bytes(
            600,
            &[
                (0, b"QFI\xfb\0\0\0\x03"),
                (8, &u64::MAX.to_be_bytes()),
                (16, &u32::MAX.to_be_bytes()),
                (100, &u32::MAX.to_be_bytes()),
            ],
        ),
        bytes(
            600,
            &[
                (0, b"QFI\xfb\0\0\0\x03"),
                (100, &104u32.to_be_bytes()),
                (104, &1u32.to_be_bytes()),
                (108, &u32::MAX.to_be_bytes()),
            ],
        ),
        bytes(
            600,
            &[
                (0, b"KDMV"),
                (12, &u64::MAX.to_le_bytes()),
                (28, &u64::MAX.to_le_bytes()),
                (36, &u64::MAX.to_le_bytes()),
            ],
        ),
        bytes(
            600,
            &[
                (0, b"QED\0"),
                (16, &1u64.to_le_bytes()),
                (56, &u32::MAX.to_le_bytes()),
                (60, &u32::MAX.to_le_bytes()),
            ],
        ),
        bytes(
            600,
            &[(0, &[0x1f, 0x8b, 8, 0x0c]), (10, &u16::MAX.to_le_bytes())],
        ),
        bytes(600, &[(156, b"L"), (257, b"ustar  \0")]),
    ];
    let mut diff = footer(DiskType::Differencing, 1 << 20).to_vec();
    diff[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
    samples.push(diff);
    for s in &samples {
        for n in 0..=s.len() {
            let d = detect(&s[..n], &s[..n], n as u64);
            let _ = d.describe();
            let _ = d.not_vhd("the file", "", Flow::Local);
        }
    }
}

#[test]
fn host_paths() {
    for p in [
        "/etc/passwd",
        "C:\\x.vhd",
        "\\\\srv\\share\\x",
        "file:///x",
        "../x",
        "a/../../x",
    ] {
        assert!(is_host_path(p), "{p}");
    }
    for p in ["base.vhd", "sub/base.vhd", ".\\base.vhd", "a..b"] {
        assert!(!is_host_path(p), "{p}");
    }
}
