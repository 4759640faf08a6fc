//! Links the `ff` binary as a fixed-address (non-PIE) executable on
//! Linux.
//!
//! Agents start `ff` thousands of times a day, and a position-independent
//! executable makes the dynamic loader apply every one of the binary's
//! ~28,000 relative relocations at each start, touching (and so
//! copying) every page of `.data.rel.ro` and the GOT before `main`
//! runs. Linked at a fixed address, the linker resolves them once, at
//! build time. Only the `ff` binary is linked this way: the code is
//! still compiled position-independent (a global relocation model would
//! also apply to proc-macros, which must be shared objects), and address
//! randomisation of the stack, heap and libraries is unchanged.
//! BENCHMARKS.md ("Start-up") has the measured effect.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // GNU ld and gcc on Linux take -no-pie; other targets keep their
    // default (macOS and Windows have no such start-up relocation cost
    // of this size, and musl links statically already).
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bin=ff=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
