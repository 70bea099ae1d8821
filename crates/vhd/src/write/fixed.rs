//! Fixed VHD output: the disk's bytes, then the footer. Streams front to back;
//! in a file, zero ranges stay holes.

use super::raw::copy_data;
use super::{new_uuid, vhd_size, DiskSource, FixedOptions, Progress, Sink};
use crate::{DiskType, Error, ErrorKind, Footer, Result, MAX_VIRTUAL_SIZE};

const MIB: u64 = 1 << 20;

/// The disk size a fixed VHD of a `size`-byte source gets: whole sectors, or a
/// whole MiB when `round_to_mib` (Azure's rule). The file is 512 bytes longer.
pub fn fixed_size(size: u64, round_to_mib: bool) -> Result<u64> {
    let s = vhd_size(size)?;
    if !round_to_mib {
        return Ok(s);
    }
    s.checked_next_multiple_of(MIB)
        .filter(|&r| r <= MAX_VIRTUAL_SIZE)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                "size rounded to a MiB is above the VHD limit",
            )
        })
}

/// Writes `source` as a fixed VHD into `sink` and finishes it. Returns the
/// bytes emitted: [`fixed_size`] plus the 512-byte footer.
pub fn write_fixed(
    source: &mut dyn DiskSource,
    mut sink: Sink<'_>,
    opts: &FixedOptions,
    progress: Progress<'_>,
) -> Result<u64> {
    let size = fixed_size(source.virtual_size(), opts.round_to_mib)?;
    copy_data(source, &mut sink, progress)?;
    sink.zeros(size - source.virtual_size())?;
    let footer = Footer::new(
        DiskType::Fixed,
        size,
        new_uuid(opts.uuid),
        crate::format::time::now(),
    )
    .seal();
    sink.write(&footer)?;
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::MemorySource;

    #[test]
    fn rounds_and_appends_a_footer() {
        assert_eq!(fixed_size(1000, false).unwrap(), 1024);
        assert_eq!(fixed_size(1000, true).unwrap(), MIB);
        assert_eq!(fixed_size(MIB, true).unwrap(), MIB);
        let mut v = Vec::new();
        let n = write_fixed(
            &mut MemorySource::new(vec![7u8; 1000]),
            Sink::stream(&mut v),
            &FixedOptions {
                round_to_mib: true,
                uuid: None,
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(n, MIB + 512);
        assert_eq!(v.len() as u64, n);
        let f = Footer::parse(v[v.len() - 512..].try_into().unwrap()).unwrap();
        assert!(f.checksum_ok());
        assert_eq!(f.current_size, MIB);
        assert_eq!(f.disk_type, DiskType::Fixed);
        assert!(v[..1000].iter().all(|&b| b == 7) && v[1000..MIB as usize].iter().all(|&b| b == 0));
    }
}
