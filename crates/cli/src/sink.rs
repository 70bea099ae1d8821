//! Local file errors said against the path the user gave: an output writer that
//! remembers why it failed, so a full disk is not reported as the library step
//! that happened to be writing (`finish gzip stream: ...`), and the pipeline's
//! `download output` / `upload input` errors renamed to the file.

use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A pipeline I/O error on the local side (`op` on `side`, e.g. `download output
/// (segment 3)`) said as `PATH: VERB: cause`, with the path the user gave; any
/// other error is returned as it is.
pub fn at_path(err: anyhow::Error, op: &str, side: &str, path: &Path, verb: &str) -> anyhow::Error {
    let Some(e) = err.downcast_ref::<cloudimg_pipeline::Error>() else {
        return err;
    };
    if e.op() != op || e.target() != side {
        return err;
    }
    match std::error::Error::source(e).and_then(|s| s.downcast_ref::<io::Error>()) {
        Some(io) => {
            let io = match io.raw_os_error() {
                Some(c) => io::Error::from_raw_os_error(c),
                None => io::Error::new(io.kind(), io.to_string()),
            };
            anyhow::Error::new(io).context(format!("{}: {verb}", path.display()))
        }
        None => err,
    }
}

/// What is kept of an `io::Error` (which is not `Clone`): enough to say it again.
type Seen = (io::ErrorKind, Option<i32>, String);

/// The first write error of a [`Watched`] writer, shared with its creator.
#[derive(Clone, Default)]
pub struct Failure(Arc<Mutex<Option<Seen>>>);

impl Failure {
    /// `err` as it is when the output did not fail; when it did, the output's
    /// own error named by `out`, since that is the cause the user can act on.
    pub fn explain(&self, out: &Path, err: anyhow::Error) -> anyhow::Error {
        let seen = self.0.lock().map(|g| g.clone()).unwrap_or(None);
        match seen {
            None => err,
            Some((kind, code, text)) => {
                let e = match code {
                    Some(c) => io::Error::from_raw_os_error(c),
                    None => io::Error::new(kind, text),
                };
                anyhow::Error::new(e).context(format!("{}: write", out.display()))
            }
        }
    }

    fn record(&self, e: &io::Error) {
        if let Ok(mut g) = self.0.lock() {
            if g.is_none() {
                *g = Some((e.kind(), e.raw_os_error(), e.to_string()));
            }
        }
    }
}

/// Passes writes to `W`, recording the first error in a [`Failure`].
pub struct Watched<W>(pub W, pub Failure);

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).inspect_err(|e| self.1.record(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().inspect_err(|e| self.1.record(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_is_said_against_the_output() {
        let f = Failure::default();
        let mut w = Watched(Full, f.clone());
        let e = w.write_all(b"x").unwrap_err();
        let e = anyhow::Error::new(e).context("finish gzip stream");
        assert_eq!(
            crate::render::chain(&f.explain(Path::new("o.tgz"), e)),
            "o.tgz: write: No space left on device (os error 28)"
        );
        let clean = Failure::default();
        let e = clean.explain(Path::new("o.tgz"), anyhow::anyhow!("r.vhd: open"));
        assert_eq!(e.to_string(), "r.vhd: open");
    }
}
