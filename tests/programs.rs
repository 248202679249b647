//! The four programs as their users run them: the binaries, the examples, the balancers in
//! front of them and the pages that describe them. One test binary, a module per theme (as
//! ripgrep's tests/tests.rs), so that `cargo test` links it once.

mod common;

mod balancers;
mod cli;
mod clients;
mod docs;
mod examples;
mod operation;
mod robust;
