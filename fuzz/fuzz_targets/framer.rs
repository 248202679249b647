//! The framer against the protocol's plain rules (framer_model.rs), fed a connection cut into
//! reads as the input says: it hears the same names with the same endings, stops where they
//! stop, and never holds more than a line at the limit, a `\r` and one read.

#![no_main]

use greeting::fuzz::{Framed, framer};
use libfuzzer_sys::fuzz_target;

#[path = "../framer_model.rs"]
mod model;

/// The most one read brings.
const READ_SIZE: usize = 1024;

/// A connection's reads as `data` describes them: its first byte's lowest bit says whether the
/// stream ends after them; then each read is a kind byte and a length (two bytes, little-endian,
/// taken as 1 to 1,024), followed by that many bytes for an even kind, or by one byte repeated
/// that many times for an odd one, so that lines at the 64 KiB limit are a few bytes of input.
fn reads(data: &[u8]) -> Option<(Vec<Vec<u8>>, bool)> {
    let (&flags, mut rest) = data.split_first()?;
    let mut reads = Vec::new();
    while let Some((&[kind, low, high], after)) = rest.split_first_chunk() {
        let len = 1 + usize::from(u16::from_le_bytes([low, high])) % READ_SIZE;
        let read = match kind % 2 {
            0 => after.get(..len.min(after.len()))?.to_vec(),
            _ => vec![*after.first()?; len],
        };
        rest = &after[if kind % 2 == 0 { read.len() } else { 1 }..];
        if !read.is_empty() {
            reads.push(read);
        }
    }
    Some((reads, flags & 1 == 1))
}

fuzz_target!(|data: &[u8]| {
    let Some((reads, eof)) = reads(data) else {
        return;
    };
    let mut fed: Vec<&[u8]> = reads.iter().map(Vec::as_slice).collect();
    if eof {
        fed.push(b"");
    }
    let (names, framed, held) = framer(&fed);
    let heard = model::model(&reads, eof);
    assert_eq!(names, heard.names, "the names");
    assert_eq!(framed == Framed::Exit, heard.exit, "the exit word");
    assert_eq!(framed == Framed::TooLong, heard.too_long, "a line too long");
    assert!(held <= model::MAX_LINE + 1 + READ_SIZE, "{held} bytes held");
});
