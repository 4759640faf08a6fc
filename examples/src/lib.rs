//! Runnable examples of ForgeFlow; see the `examples/` folder of this crate.
//! Run one with `cargo run -p ff-examples --example NAME`.

#![forbid(unsafe_code)]
