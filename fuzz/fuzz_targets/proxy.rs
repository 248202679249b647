//! The PROXY header parser, fed a connection's first bytes: it never panics, never claims more
//! bytes than came, and its answer never changes as more bytes come, however TCP splits them:
//! once a prefix is refused, every longer one is; once one is a header, every longer one is that
//! header.

#![no_main]

use greeting::fuzz::proxy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let mut decided = None;
    for cut in 0..=bytes.len() {
        let now = proxy(&bytes[..cut]);
        if let Ok(Some(len)) = now {
            assert!(len <= cut, "a header of {len} bytes in {cut}");
        }
        match (&decided, &now) {
            (None, Ok(None)) => {}
            (None, _) => decided = Some(now),
            (Some(Err(_)), Err(_)) => {}
            (Some(before), _) => assert_eq!(before, &now, "the answer changed at byte {cut}"),
        }
    }
});
