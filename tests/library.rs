//! The library in process, as a program that embeds it uses it: the TCP and UDP servers and
//! clients on loopback, IPv4 and IPv6. It needs no binary, and runs with
//! `--no-default-features` too.

mod common;

mod tcp;
mod udp;
