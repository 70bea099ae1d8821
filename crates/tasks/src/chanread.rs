//! A `Read` over chunks arriving on a channel: how a producer thread (a package writer,
//! a range fetcher) feeds a consumer that wants a byte stream.

use std::io::{self, Read};
use std::sync::mpsc::Receiver;

/// Chunks from `rx` as one stream. The stream ends when every sender is dropped; an `Err`
/// chunk is returned to the reader (which aborts whatever it feeds). Empty chunks are
/// skipped, never taken for the end.
pub(crate) struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    pub(crate) fn new(rx: Receiver<io::Result<Vec<u8>>>) -> Self {
        ChannelReader {
            rx,
            cur: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.cur.len() {
            match self.rx.recv() {
                Ok(r) => {
                    self.cur = r?;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.at);
        buf[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    #[test]
    fn empty_chunks_are_not_the_end_and_errors_pass_through() {
        let (tx, rx) = sync_channel(8);
        tx.send(Ok(b"ab".to_vec())).unwrap();
        tx.send(Ok(Vec::new())).unwrap();
        tx.send(Ok(b"cde".to_vec())).unwrap();
        drop(tx);
        let mut out = Vec::new();
        ChannelReader::new(rx).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcde");

        let (tx, rx) = sync_channel(8);
        tx.send(Ok(b"x".to_vec())).unwrap();
        tx.send(Err(io::Error::other("producer failed"))).unwrap();
        let mut out = Vec::new();
        let err = ChannelReader::new(rx).read_to_end(&mut out).unwrap_err();
        assert_eq!(err.to_string(), "producer failed");
    }
}
