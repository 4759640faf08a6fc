//! The content of a lock file: the lock's name, the last fencing token
//! granted, and the current exclusive holder (if any); and the same way of
//! keeping a JSON document in a file, shared with the table of a lock's
//! shared holders ([`crate::holders`]).
//!
//! A document is rewritten in place with one positioned write, padded with spaces to
//! the old length, so a holder killed at any instant leaves either the old
//! content or the new one. Readers may still catch a write half-way (reads
//! and writes of a file are not atomic with respect to each other), so they
//! retry a few times before calling the content unreadable. An unreadable or
//! foreign file never blocks anyone: exclusion comes from the kernel lock,
//! and fencing tokens have a clock floor (below).

use std::fs::File;
use std::io;
#[cfg(not(unix))]
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use ff_traits::LockInfo;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A JSON document kept in a file of its own, tagged with its format.
pub(crate) trait Document: Serialize + DeserializeOwned {
    /// The format tag this crate writes and accepts.
    const FORMAT: &'static str;
    /// The format tag read from a file.
    fn format(&self) -> &str;
}

/// The format tag of lock files written by this crate.
pub(crate) const FORMAT: &str = "ff-lock/1";

impl Document for LockFileContent {
    const FORMAT: &'static str = FORMAT;
    fn format(&self) -> &str {
        &self.format
    }
}

/// What a lock file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LockFileContent {
    pub(crate) format: String,
    pub(crate) name: String,
    pub(crate) last_token: u64,
    pub(crate) holder: Option<LockInfo>,
}

/// What reading a document's file found.
#[derive(Debug)]
pub(crate) enum Found<T = LockFileContent> {
    /// A new, empty file.
    Empty,
    /// Our format.
    Content(Box<T>),
    /// Something else: torn, foreign or damaged.
    Unreadable(String),
}

impl<T> Found<T> {
    pub(crate) fn content(&self) -> Option<&T> {
        match self {
            Self::Content(c) => Some(c),
            _ => None,
        }
    }
}

/// Reads the whole file from offset 0 without moving the file position.
/// A read shorter than asked is taken as the end of a regular file (one
/// call for the usual small file); a read that stopped short for another
/// reason leaves a torn document, which [`read`] reads again.
fn read_all_at_start(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = read_at(file, &mut chunk, buf.len() as u64)?;
        buf.extend_from_slice(&chunk[..n]);
        if n < chunk.len() {
            return Ok(());
        }
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}

#[cfg(not(unix))]
fn write_all_at(mut file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(buf)
}

/// Reads the file from its start; retries a torn read a few times.
pub(crate) fn read<T: Document>(file: &File) -> io::Result<(Found<T>, u64)> {
    let mut buf = Vec::new();
    let mut last_err = String::new();
    for _ in 0..3 {
        read_all_at_start(file, &mut buf)?;
        let len = buf.len() as u64;
        match parse(&buf) {
            Found::Unreadable(e) if e.starts_with(TORN) => last_err = e,
            found => return Ok((found, len)),
        }
    }
    Ok((Found::Unreadable(last_err), buf.len() as u64))
}

/// How [`parse`] begins the reason for text that is not JSON (perhaps a
/// write caught half-way, worth reading again).
const TORN: &str = "not JSON: ";

/// What the bytes of a document's file hold.
pub(crate) fn parse<T: Document>(bytes: &[u8]) -> Found<T> {
    let text = bytes.trim_ascii();
    if text.is_empty() {
        return Found::Empty;
    }
    match serde_json::from_slice::<T>(text) {
        Ok(c) if c.format() == T::FORMAT => Found::Content(Box::new(c)),
        Ok(c) => Found::Unreadable(format!("unknown format {:?}", c.format())),
        Err(e) => Found::Unreadable(format!("{TORN}{e}")),
    }
}

/// Rewrites the file in place with one write, padded to `old_len`.
pub(crate) fn write<T: Document>(file: &File, content: &T, old_len: u64) -> io::Result<u64> {
    let mut bytes = serde_json::to_vec(content).map_err(io::Error::other)?;
    bytes.push(b'\n');
    let json_len = bytes.len();
    let old_len = usize::try_from(old_len).unwrap_or(usize::MAX);
    if bytes.len() < old_len {
        bytes.resize(old_len, b' ');
    }
    write_all_at(file, &bytes, 0)?;
    // A file once padded by huge metadata is shrunk back; whitespace left by
    // a crash before this point is harmless.
    if old_len > json_len + 4096 {
        file.set_len(json_len as u64)?;
        return Ok(json_len as u64);
    }
    Ok(bytes.len() as u64)
}

/// The next fencing token: one more than the last one recorded, and never
/// below the current time in microseconds, so tokens keep rising even when
/// a lock file was deleted or damaged.
pub(crate) fn next_token(last: Option<u64>) -> u64 {
    let floor = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    last.unwrap_or(0).saturating_add(1).max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_rise_past_a_clock_floor() {
        let a = next_token(None);
        let b = next_token(Some(a));
        assert!(b > a);
        assert_eq!(next_token(Some(u64::MAX - 1)), u64::MAX);
    }

    #[test]
    fn rewrite_in_place_reads_back() {
        let file = tempfile::tempfile().expect("tempfile");
        let c = LockFileContent {
            format: FORMAT.into(),
            name: "x".into(),
            last_token: 7,
            holder: None,
        };
        write(&file, &c, 500).expect("write");
        let (r, len) = read::<LockFileContent>(&file).expect("read");
        assert_eq!(len, 500, "padded to the old length");
        assert_eq!(r.content(), Some(&c));
        write(&file, &c, 10_000).expect("write");
        assert!(
            read::<LockFileContent>(&file).expect("read").1 < 1_000,
            "shrunk after huge metadata"
        );
    }

    #[test]
    fn reads_files_longer_than_one_chunk() {
        let file = tempfile::tempfile().expect("tempfile");
        let c = LockFileContent {
            format: FORMAT.into(),
            name: "n".repeat(5_000),
            last_token: 9,
            holder: None,
        };
        write(&file, &c, 0).expect("write");
        assert_eq!(
            read::<LockFileContent>(&file).expect("read").0.content(),
            Some(&c)
        );
    }

    #[test]
    fn foreign_and_garbage_content_is_unreadable_not_fatal() {
        for junk in [
            &b"{\"format\":\"other/9\",\"name\":\"x\",\"last_token\":1,\"holder\":null}"[..],
            b"\x00\x01garbage",
            b"{\"trunc",
        ] {
            let mut file = tempfile::tempfile().expect("tempfile");
            use std::io::Write as _;
            file.write_all(junk).expect("write");
            assert!(matches!(
                read::<LockFileContent>(&file).expect("read").0,
                Found::Unreadable(_)
            ));
        }
    }
}
