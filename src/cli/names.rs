//! Names to greet, from the arguments or from standard input, and names shown in messages.

use std::ffi::OsString;
use std::io::{self, BufRead};

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

/// Returns the names in `input`, one per line: a trailing `\r` is dropped and empty lines are
/// skipped. Lines are read as they come, so a person can type them at a terminal.
///
/// A line longer than `longest` bytes (without its ending) is an `InvalidData` error, found
/// after reading at most `longest + 2` bytes of it, so endless input costs bounded memory.
fn names(mut input: impl BufRead, longest: usize) -> impl Iterator<Item = io::Result<Vec<u8>>> {
    let mut done = false;
    std::iter::from_fn(move || {
        while !done {
            let mut line = Vec::new();
            let limit = longest.saturating_add(2) as u64;
            match io::Read::take(&mut input, limit).read_until(b'\n', &mut line) {
                Ok(0) => done = true,
                Ok(_) => {
                    let ended = line.last() == Some(&b'\n');
                    if ended {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if line.len() > longest || (!ended && line.len() as u64 == limit) {
                        done = true;
                        return Some(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "a line is longer than {longest} bytes, the longest name the \
                                 server can answer"
                            ),
                        )));
                    }
                    if !line.is_empty() {
                        return Some(Ok(line));
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    done = true;
                    return Some(Err(err));
                }
            }
        }
        None
    })
}

/// Calls `greet` with each name in turn, from standard input (as `names` reads it, up to
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
    if from_stdin {
        for name in names(io::stdin().lock(), longest) {
            let name = name.map_err(|err| {
                io::Error::new(err.kind(), format!("failed to read stdin: {err}"))
            })?;
            if !greet(&name)? {
                break;
            }
        }
    } else {
        for name in args {
            if !greet(name.as_encoded_bytes())? {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_cr_and_skip_blank_lines() {
        let input = &b"Ada\r\n\nZo\xc3\xab\n\r\nlast"[..];
        let names: Vec<Vec<u8>> = names(input, 10).collect::<io::Result<_>>().unwrap();
        assert_eq!(names, [&b"Ada"[..], "Zoë".as_bytes(), b"last"]);
    }

    #[test]
    fn names_stop_at_a_line_longer_than_the_longest() {
        let input = &b"1234\r\n12345\n123456\nnever\n"[..];
        let mut names = names(input, 5);
        assert_eq!(names.next().unwrap().unwrap(), b"1234");
        assert_eq!(names.next().unwrap().unwrap(), b"12345");
        let err = names.next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("longer than 5 bytes"), "{err}");
        assert!(names.next().is_none());
    }

    #[test]
    fn endless_input_is_read_only_up_to_the_limit() {
        let mut endless = io::BufReader::new(io::repeat(b'a'));
        let err = names(&mut endless, 1000).next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn long_names_are_cut_short() {
        assert_eq!(shown_name(b"Jaber"), "'Jaber'");
        let long = shown_name("é".repeat(100).as_bytes());
        assert_eq!(long, format!("'{}'... (200 bytes)", "é".repeat(60)));
    }
}
