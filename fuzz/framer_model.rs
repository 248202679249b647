//! The greeting protocol's framing rules, written as plainly as possible: a read is one message
//! until a read holds a newline; from there on, lines; a line over 64 KiB ends it all. The
//! framer's property test (src/tcp/framer.rs) and its fuzz target (fuzz_targets/framer.rs) hold
//! the framer to them.

/// The longest line, without its ending.
pub const MAX_LINE: usize = 64 * 1024;

/// What a connection's bytes mean, by the plain rules of the protocol: the names that came,
/// each with its ending, and how it ended.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Heard {
    pub names: Vec<(Vec<u8>, &'static [u8])>,
    pub too_long: bool,
    pub exit: bool,
}

/// What `reads`, and the end of the stream after them if `eof`, mean by those rules.
pub fn model(reads: &[Vec<u8>], eof: bool) -> Heard {
    let mut heard = Heard::default();
    let take = |heard: &mut Heard, name: &[u8], ending: &'static [u8]| {
        match name == b"exit" {
            true => heard.exit = true,
            false => heard.names.push((name.to_vec(), ending)),
        }
        heard.exit
    };
    // Raw mode: each read a message, up to the first read that holds a newline.
    let first_line = reads.iter().position(|read| read.contains(&b'\n'));
    for read in &reads[..first_line.unwrap_or(reads.len())] {
        if take(&mut heard, read, b"") {
            return heard;
        }
    }
    // Line mode from there on: how the bytes were cut no longer matters.
    let stream = reads[first_line.unwrap_or(reads.len())..].concat();
    for line in stream.split_inclusive(|&b| b == b'\n') {
        let (name, ending) = match line.strip_suffix(b"\n") {
            Some(line) => match line.strip_suffix(b"\r") {
                Some(name) => (name, &b"\r\n"[..]),
                None => (line, &b"\n"[..]),
            },
            // A partial line: at the end of the stream a name, `\r` and all; before it,
            // the `\r` may yet begin its ending.
            None if eof => (line, &b""[..]),
            None => (line.strip_suffix(b"\r").unwrap_or(line), &b""[..]),
        };
        if name.len() > MAX_LINE {
            heard.too_long = true;
            return heard;
        }
        if (ending.is_empty() && !eof) || take(&mut heard, name, ending) {
            return heard;
        }
    }
    heard
}
