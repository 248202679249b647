//! Names to greet, from the arguments or from standard input, and names shown in messages.

use std::ffi::OsString;
use std::io::{self, BufRead, Read};

/// Shows a name in a message as `'Ada'`: lossy UTF-8, cut short after 60 characters with its
/// length said, so a long name never floods a terminal.
pub fn shown_name(name: &[u8]) -> String {
    const LONGEST: usize = 60;
    let text = String::from_utf8_lossy(name);
    match text.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("'{}'... ({} bytes)", &text[..cut], name.len()),
        None => format!("'{text}'"),
    }
}

/// Calls `greet` with each name in turn, from standard input (as `next_name` reads it, up to
/// `longest` bytes a name) when `from_stdin` is set, else from `args`, until `greet` returns
/// false or fails.
///
/// # Errors
///
/// The first error from `greet`, or a failure to read stdin (`failed to read stdin: …`).
pub fn for_each_name<E: From<io::Error>>(
    from_stdin: bool,
    longest: usize,
    args: &[OsString],
    mut greet: impl FnMut(&[u8]) -> Result<bool, E>,
) -> Result<(), E> {
    if !from_stdin {
        for name in args {
            if !greet(name.as_encoded_bytes())? {
                break;
            }
        }
        return Ok(());
    }
    let (mut stdin, mut name) = (io::stdin().lock(), Vec::new());
    let failed =
        |err: io::Error| io::Error::new(err.kind(), format!("failed to read stdin: {err}"));
    while next_name(&mut stdin, longest, &mut name).map_err(failed)? {
        if !greet(&name)? {
            break;
        }
    }
    Ok(())
}

/// Reads the next name from `input` into `name`, one per line: a trailing `\r` is dropped and
/// empty lines are skipped; false at the end of the input. Lines are read as they come, so a
/// person can type them at a terminal.
///
/// # Errors
///
/// `InvalidData` for a line longer than `longest` bytes (without its ending), found after
/// reading at most `longest + 2` bytes of it, so endless input costs bounded memory; a failure
/// to read.
fn next_name(input: &mut impl BufRead, longest: usize, name: &mut Vec<u8>) -> io::Result<bool> {
    let limit = longest.saturating_add(2) as u64;
    loop {
        name.clear();
        if Read::take(&mut *input, limit).read_until(b'\n', name)? == 0 {
            return Ok(false);
        }
        // The line's ending goes: `\n`, and the `\r` of a `\r\n`.
        let ended = name.ends_with(b"\n");
        let ending = usize::from(ended) + usize::from(name.ends_with(b"\r\n"));
        name.truncate(name.len() - ending);
        if name.len() > longest || (!ended && name.len() as u64 == limit) {
            let msg = format!(
                "a line is longer than {longest} bytes, the longest name the server can answer"
            );
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
        if !name.is_empty() {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `input`, up to the first error.
    fn names(mut input: &[u8], longest: usize) -> (Vec<Vec<u8>>, Option<io::Error>) {
        let (mut names, mut name) = (Vec::new(), Vec::new());
        loop {
            match next_name(&mut input, longest, &mut name) {
                Ok(true) => names.push(name.clone()),
                Ok(false) => return (names, None),
                Err(err) => return (names, Some(err)),
            }
        }
    }

    #[test]
    fn names_drop_cr_and_skip_blank_lines() {
        let (names, err) = names(b"Ada\r\n\nZo\xc3\xab\n\r\nlast", 10);
        assert_eq!(names, [&b"Ada"[..], "Zoë".as_bytes(), b"last"]);
        assert!(err.is_none());
    }

    #[test]
    fn names_stop_at_a_line_longer_than_the_longest() {
        let (names, err) = names(b"1234\r\n12345\n123456\nnever\n", 5);
        assert_eq!(names, [&b"1234"[..], b"12345"]);
        let err = err.expect("the long line is refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("longer than 5 bytes"), "{err}");
    }

    #[test]
    fn endless_input_is_read_only_up_to_the_limit() {
        let mut endless = io::BufReader::new(io::repeat(b'a'));
        let err = next_name(&mut endless, 1000, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn long_names_are_cut_short() {
        assert_eq!(shown_name(b"Jaber"), "'Jaber'");
        let long = shown_name("é".repeat(100).as_bytes());
        assert_eq!(long, format!("'{}'... (200 bytes)", "é".repeat(60)));
    }
}
