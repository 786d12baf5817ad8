//! Procedural macros for [`volttron`](https://docs.rs/volttron): `#[volttron::agent]`,
//! `#[volttron::main]` and `#[volttron::test]`. Use them through the `volttron` crate.
//!
//! Each macro parses, then validates, then expands. On an error it emits
//! `compile_error!` at the offending span *and* the item itself (with the agent
//! attributes removed), so the rest of the crate keeps type-checking and IDEs keep working.
//! Generated code only names `::volttron::__private` paths.

use proc_macro::TokenStream;

mod agent;
mod entry;
mod handler;

/// Turns an `impl` block of a plain struct into a volttron agent.
///
/// See the `volttron::agent` module documentation for the handler attributes.
#[proc_macro_attribute]
pub fn agent(args: TokenStream, item: TokenStream) -> TokenStream {
    agent::expand(args.into(), item.into()).into()
}

/// Runs an `async fn main` on a tokio runtime (multi-threaded by default;
/// `#[volttron::main(flavor = "current_thread")]` for one thread).
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Main, args.into(), item.into()).into()
}

/// Runs an `async fn` test on a current-thread runtime. A single parameter of type
/// `TestPlatform` is given a fresh test platform (virtual clock, temporary home).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Test, args.into(), item.into()).into()
}
