//! The standard OVA (DMTF OVF 1.x): a plain ustar holding the `.ovf`
//! descriptor first, then the `.mf` manifest (`SHA256(name)= hex` lines),
//! then the disks in References order.
//!
//! The descriptor is written from a template (the envelope, References,
//! DiskSection and a minimal VirtualSystem with one CPU, memory, an IDE
//! controller and the disks); on unpack it is read with a small attribute
//! scanner, enough to check References against the files and the manifest.

use crate::error::{Error, ErrorKind, Result};
use crate::pack::{pack, Compression, PackInput, PackOptions, PackReport};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// The `ovf:format` URI of a VHD disk (Microsoft's VHD specification page).
pub const VHD_FORMAT: &str = "http://technet.microsoft.com/en-us/library/bb676673.aspx";

/// One disk to put in an OVA.
pub struct OvaDisk<'a> {
    /// File name inside the OVA (`disk0.vhd`).
    pub name: String,
    /// Bytes of the file.
    pub len: u64,
    /// Virtual size of the disk (the VHD footer's current size).
    pub capacity: u64,
    /// SHA256 of the file, known before packing because the manifest comes first.
    pub sha256: [u8; 32],
    pub data: Box<dyn Read + 'a>,
}

/// The virtual machine described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub name: String,
    pub cpus: u32,
    pub memory_mib: u64,
}

impl Default for VmSpec {
    fn default() -> Self {
        VmSpec {
            name: "cloudimg".into(),
            cpus: 1,
            memory_mib: 1024,
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The OVF descriptor for `disks` (name, file size, capacity).
pub fn descriptor(vm: &VmSpec, disks: &[(&str, u64, u64)]) -> String {
    let name = xml_escape(&vm.name);
    let mut refs = String::new();
    let mut disk_section = String::new();
    let mut items = String::new();
    for (i, (file, size, capacity)) in disks.iter().enumerate() {
        let file = xml_escape(file);
        refs.push_str(&format!(
            "    <File ovf:href=\"{file}\" ovf:id=\"file{i}\" ovf:size=\"{size}\"/>\n"
        ));
        disk_section.push_str(&format!(
            "    <Disk ovf:capacity=\"{capacity}\" ovf:capacityAllocationUnits=\"byte\" \
ovf:diskId=\"disk{i}\" ovf:fileRef=\"file{i}\" ovf:format=\"{VHD_FORMAT}\"/>\n"
        ));
        // rasd elements in the CIM schema's (alphabetical) order, as validators expect.
        items.push_str(&format!(
            "      <Item>\n        <rasd:AddressOnParent>{i}</rasd:AddressOnParent>\n        \
<rasd:ElementName>Hard disk {i}</rasd:ElementName>\n        \
<rasd:HostResource>ovf:/disk/disk{i}</rasd:HostResource>\n        \
<rasd:InstanceID>{}</rasd:InstanceID>\n        <rasd:Parent>3</rasd:Parent>\n        \
<rasd:ResourceType>17</rasd:ResourceType>\n      </Item>\n",
            4 + i
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="1.1">
  <References>
{refs}  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
{disk_section}  </DiskSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="1">
      <Info>The guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>{cpus} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{cpus}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>{mem} MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{mem}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>IDE controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceType>5</rasd:ResourceType>
      </Item>
{items}    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#,
        cpus = vm.cpus,
        mem = vm.memory_mib,
    )
}

/// Packs an OVA: `<vm>.ovf`, `<vm>.mf`, then the disks, as a plain tar unless
/// `opts` asks for compression.
pub fn pack_ova<W: Write>(
    out: W,
    vm: &VmSpec,
    disks: Vec<OvaDisk<'_>>,
    opts: &PackOptions,
) -> Result<(PackReport, W)> {
    let base = sanitize_base(&vm.name);
    let ovf_name = format!("{base}.ovf");
    let mf_name = format!("{base}.mf");
    for d in &disks {
        if d.name.contains('/') || d.name == ovf_name || d.name == mf_name || d.name.is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidArgument, "bad disk file name").member(d.name.clone())
            );
        }
    }
    let list: Vec<(&str, u64, u64)> = disks
        .iter()
        .map(|d| (d.name.as_str(), d.len, d.capacity))
        .collect();
    let ovf = descriptor(vm, &list).into_bytes();
    let mut mf = format!(
        "SHA256({ovf_name})= {}\n",
        hex::encode(Sha256::digest(&ovf))
    );
    for d in &disks {
        mf.push_str(&format!("SHA256({})= {}\n", d.name, hex::encode(d.sha256)));
    }
    let mf = mf.into_bytes();
    let mut inputs = vec![
        PackInput {
            name: ovf_name,
            len: ovf.len() as u64,
            data: Box::new(std::io::Cursor::new(ovf)),
        },
        PackInput {
            name: mf_name,
            len: mf.len() as u64,
            data: Box::new(std::io::Cursor::new(mf)),
        },
    ];
    for d in disks {
        inputs.push(PackInput {
            name: d.name,
            len: d.len,
            data: d.data,
        });
    }
    pack(out, inputs, opts)
}

/// Options for a standard, uncompressed OVA.
pub fn plain_options() -> PackOptions {
    PackOptions {
        compression: Compression::None,
        mtime: None,
    }
}

fn sanitize_base(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("vm{s}")
    } else {
        s
    }
}

/// A file as unpacked, for [`check_unpacked`].
pub struct UnpackedFile<'a> {
    pub name: &'a str,
    pub size: u64,
    pub sha256: Option<&'a str>,
    pub sha1: Option<&'a str>,
    /// The content, for the descriptor and the manifest.
    pub text: Option<&'a [u8]>,
}

/// A `<File>` of the References section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvfFile {
    pub href: String,
    pub id: String,
    pub size: Option<u64>,
}

/// A `<Disk>` of the DiskSection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvfDisk {
    pub disk_id: String,
    pub file_ref: Option<String>,
    pub capacity: Option<String>,
    pub format: Option<String>,
}

/// What an OVA holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvaInfo {
    pub descriptor: String,
    pub files: Vec<OvfFile>,
    pub disks: Vec<OvfDisk>,
    /// Files whose manifest digest was checked.
    pub verified: Vec<String>,
}

/// Checks an unpacked OVA: descriptor first, every References file present
/// with its size, and every manifest line matching the file's digest.
pub fn check_unpacked(files: &[UnpackedFile<'_>]) -> Result<OvaInfo> {
    let ovf_err = |m: &str| Error::new(ErrorKind::Ovf, m.to_string());
    let first = files.first().ok_or_else(|| ovf_err("empty archive"))?;
    if !first.name.ends_with(".ovf") {
        return Err(ovf_err("the first member is not the .ovf descriptor").member(first.name));
    }
    let text = first
        .text
        .ok_or_else(|| ovf_err("descriptor too large to check").member(first.name))?;
    let text = std::str::from_utf8(text)
        .map_err(|_| ovf_err("descriptor is not UTF-8").member(first.name))?;
    let refs = parse_files(text).map_err(|e| e.member(first.name))?;
    let disks = parse_disks(text);
    for f in &refs {
        let found = files.iter().find(|u| u.name == f.href).ok_or_else(|| {
            ovf_err(&format!(
                "References file {:?} is not in the archive",
                f.href
            ))
        })?;
        if let Some(size) = f.size {
            if size != found.size {
                return Err(ovf_err(&format!(
                    "References says {size} bytes, the file has {}",
                    found.size
                ))
                .member(f.href.clone()));
            }
        }
    }
    let mut verified = Vec::new();
    let manifests: Vec<&UnpackedFile<'_>> =
        files.iter().filter(|f| f.name.ends_with(".mf")).collect();
    if manifests.len() > 1 {
        return Err(ovf_err("more than one manifest"));
    }
    if let Some(mf) = manifests.first() {
        if files.get(1).map(|f| f.name) != Some(mf.name) {
            return Err(ovf_err("the manifest must follow the descriptor").member(mf.name));
        }
        let text = mf
            .text
            .ok_or_else(|| ovf_err("manifest too large to check").member(mf.name))?;
        let text = std::str::from_utf8(text)
            .map_err(|_| ovf_err("manifest is not UTF-8").member(mf.name))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (alg, name, digest) = parse_manifest_line(line)
                .ok_or_else(|| ovf_err(&format!("bad manifest line {line:?}")).member(mf.name))?;
            let f = files
                .iter()
                .find(|u| u.name == name)
                .ok_or_else(|| ovf_err(&format!("manifest lists {name:?}, not in the archive")))?;
            let got = match alg.as_str() {
                "SHA256" => f.sha256,
                "SHA1" => f.sha1,
                other => {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("manifest digest {other} (SHA1 and SHA256 are supported)"),
                    )
                    .member(mf.name))
                }
            };
            if got.map(|g| g.eq_ignore_ascii_case(&digest)) != Some(true) {
                return Err(Error::new(
                    ErrorKind::ChecksumMismatch,
                    format!(
                        "{alg} is {}, the manifest says {digest}",
                        got.unwrap_or("unknown")
                    ),
                )
                .member(name));
            }
            verified.push(name);
        }
        for f in files {
            let exempt = f.name.ends_with(".mf") || f.name.ends_with(".cert");
            if !exempt && !verified.iter().any(|v| v == f.name) {
                return Err(ovf_err("file is not in the manifest").member(f.name));
            }
        }
    }
    Ok(OvaInfo {
        descriptor: first.name.to_string(),
        files: refs,
        disks,
        verified,
    })
}

/// `SHA256(name)= hex` (spaces around `=` tolerated).
fn parse_manifest_line(line: &str) -> Option<(String, String, String)> {
    let open = line.find('(')?;
    // Search for `)` only after `(`: a stray `)` earlier in the line must not make
    // the name range run backwards.
    let close = open + line[open..].rfind(')')?;
    let alg = line[..open].trim().to_ascii_uppercase();
    let name = line[open + 1..close].to_string();
    let rest = line[close + 1..].trim_start();
    let digest = rest.strip_prefix('=')?.trim().to_string();
    if digest.is_empty() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((alg, name, digest))
}

/// Every element `<tag ...>` (any namespace prefix) with its attributes.
fn elements<'a>(text: &'a str, local: &str) -> Vec<Vec<(&'a str, String)>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        let name_end = tag
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        let lname = name.rsplit(':').next().unwrap_or(name);
        if lname == local && !name.starts_with('/') {
            out.push(attributes(&tag[name_end..]));
        }
        rest = &rest[end.min(rest.len())..];
    }
    out
}

fn attributes(s: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches('/').trim();
        let after = rest[eq + 1..].trim_start();
        let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let Some(close) = after[1..].find(q) else {
            break;
        };
        let value = after[1..1 + close]
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        out.push((key, value));
        rest = &after[close + 2..];
    }
    out
}

fn attr(attrs: &[(&str, String)], local: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(k, _)| k.rsplit(':').next() == Some(local))
        .map(|(_, v)| v.clone())
}

fn parse_files(text: &str) -> Result<Vec<OvfFile>> {
    if !text.contains("Envelope") {
        return Err(Error::new(ErrorKind::Ovf, "descriptor has no Envelope"));
    }
    elements(text, "File")
        .into_iter()
        .map(|a| {
            let href = attr(&a, "href")
                .ok_or_else(|| Error::new(ErrorKind::Ovf, "File without ovf:href"))?;
            let size = match attr(&a, "size") {
                Some(s) => Some(
                    s.parse()
                        .map_err(|_| Error::new(ErrorKind::Ovf, format!("bad ovf:size {s:?}")))?,
                ),
                None => None,
            };
            Ok(OvfFile {
                href,
                id: attr(&a, "id").unwrap_or_default(),
                size,
            })
        })
        .collect()
}

fn parse_disks(text: &str) -> Vec<OvfDisk> {
    elements(text, "Disk")
        .into_iter()
        .map(|a| OvfDisk {
            disk_id: attr(&a, "diskId").unwrap_or_default(),
            file_ref: attr(&a, "fileRef"),
            capacity: attr(&a, "capacity"),
            format: attr(&a, "format"),
        })
        .collect()
}

/// SHA256 of everything `r` yields (the manifest needs disk digests before the disks).
pub fn sha256_of(mut r: impl Read) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_reads_back() {
        let d = descriptor(&VmSpec::default(), &[("disk0.vhd", 1536, 1 << 30)]);
        let files = parse_files(&d).unwrap();
        assert_eq!(
            files,
            vec![OvfFile {
                href: "disk0.vhd".into(),
                id: "file0".into(),
                size: Some(1536)
            }]
        );
        let disks = parse_disks(&d);
        assert_eq!(disks[0].capacity.as_deref(), Some("1073741824"));
        assert_eq!(disks[0].format.as_deref(), Some(VHD_FORMAT));
        assert_eq!(disks[0].file_ref.as_deref(), Some("file0"));
    }

    #[test]
    fn manifest_lines() {
        assert_eq!(
            parse_manifest_line("SHA256(a.vhd)= 00ff").unwrap(),
            ("SHA256".into(), "a.vhd".into(), "00ff".into())
        );
        assert_eq!(parse_manifest_line("SHA1(x) = ab").unwrap().0, "SHA1");
        assert!(parse_manifest_line("garbage").is_none());
        // Fuzz regression (ova_ovf): a `)` before the `(` used to panic on slicing.
        assert!(parse_manifest_line(")SHA256(").is_none());
        assert_eq!(
            parse_manifest_line(")x SHA256(a)= 0f").unwrap().1,
            "a".to_string()
        );
    }
}
