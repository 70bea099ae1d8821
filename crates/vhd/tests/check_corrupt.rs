//! Every corrupt variant the fixture generator makes yields a finding naming
//! the damaged field and its offset (an error when the file is unsafe to read,
//! a warning at most when it is still readable); clean files yield none.

use cloudimg_fixtures::{self as fx, Corruption, LayerSpec, Layout};
use cloudimg_vhd::check::{check_chain, Severity};
use cloudimg_vhd::{Chain, ChainOptions, ChainReader};
use std::io::Read;
use std::path::Path;

const MIB: u64 = 1 << 20;

fn generate(dir: &Path, layout: Layout, c: Option<Corruption>) -> fx::Generated {
    let needs_parent = c.is_some_and(|c| c.needs_parent());
    if needs_parent {
        fx::chain(
            dir,
            8 * MIB,
            5,
            &[
                LayerSpec::new("base.vhd", layout, 2 << 20)
                    .write(0, 64, 1)
                    .write(5000, 10, 2),
                LayerSpec::new("leaf.vhd", layout, 2 << 20)
                    .write(3, 3, 3)
                    .write(4100, 8, 4),
            ],
        )
        .unwrap()
    } else {
        fx::dynamic(
            dir,
            8 * MIB,
            6,
            LayerSpec::new("d.vhd", layout, 2 << 20)
                .write(0, 64, 1)
                .write(5000, 10, 2),
        )
        .unwrap()
    }
}

/// Fields named by the generator that we name differently.
fn same_field(ours: &str, theirs: &str) -> bool {
    ours == theirs
        || (theirs.starts_with("header.parent_locator") && ours == "header.parent_locator")
        || (theirs.starts_with("bat") && ours == "bat")
}

#[test]
fn clean_fixtures_have_no_findings() {
    for layout in Layout::ALL {
        for parent in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let c = parent.then_some(Corruption::ParentUuidMismatch);
            let g = generate(tmp.path(), layout, c);
            let report = check_chain(g.leaf(), &ChainOptions::default());
            let unexpected: Vec<_> = report
                .findings
                .iter()
                // The qemu layout records qemu's CHS-rounded size, which is fine.
                .collect();
            assert!(unexpected.is_empty(), "{layout:?}: {unexpected:#?}");
        }
    }
}

#[test]
fn every_corruption_is_named() {
    for layout in Layout::ALL {
        for c in Corruption::ALL {
            let tmp = tempfile::tempdir().unwrap();
            let g = generate(tmp.path(), layout, Some(c));
            let applied = fx::corrupt(g.leaf(), c).unwrap();
            let report = check_chain(g.leaf(), &ChainOptions::default());
            let ctx = format!("{layout:?} {c:?} {applied:?}\n{:#?}", report.findings);
            let named = report.findings.iter().any(|f| {
                same_field(f.field, applied.field)
                    && (f.offset == Some(applied.offset) || applied.field == "file.length")
            });
            if applied.readable {
                assert!(!report.has_errors(), "readable but errors: {ctx}");
                let chain = Chain::open(g.leaf(), &ChainOptions::default()).unwrap();
                let mut bytes = Vec::new();
                ChainReader::new(&chain).read_to_end(&mut bytes).unwrap();
                assert!(
                    bytes == g.oracle.to_vec(),
                    "readable variant reads wrong: {ctx}"
                );
            } else {
                assert!(report.has_errors(), "unsafe but no error: {ctx}");
                let named_error = report.findings.iter().any(|f| {
                    f.severity == Severity::Error
                        && same_field(f.field, applied.field)
                        && (f.offset == Some(applied.offset) || applied.field == "file.length")
                });
                assert!(named_error, "no error names the field: {ctx}");
            }
            assert!(named, "no finding names the field: {ctx}");
        }
    }
}
