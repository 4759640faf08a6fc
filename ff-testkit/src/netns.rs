//! Network namespaces for partition tests: each [`Namespace`] is a network
//! stack of its own (named `ff-test-<pid>-<n>`), joined to another by a
//! veth pair ([`Link`]) on private test addresses, with no default route:
//! nothing in it reaches anything but what the test linked. A [`Link`] is
//! cut by setting its ends down, which drops packets without a reset, as
//! a real partition does (this kernel has no netem, and iptables is not
//! installed).
//!
//! Needs root and `ip` (iproute2): [`available`] says whether this machine
//! has them, loudly skipping otherwise, unless `FF_REQUIRE_ROOT=1` (CI, as
//! root), when it fails instead. Namespaces are deleted on drop; ones left
//! by a test process that died (machines are reused) are deleted by the
//! next test that makes one.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// What every namespace name starts with.
const PREFIX: &str = "ff-test-";

/// Whether namespaces can be made here: root, and `ip` installed. Skips
/// loudly (see [`crate::skip`]) when not.
///
/// # Panics
/// When they cannot and `FF_REQUIRE_ROOT=1`.
#[must_use]
pub fn available() -> bool {
    #[cfg(unix)]
    let root = rustix::process::geteuid().is_root();
    #[cfg(not(unix))]
    let root = false;
    if !root {
        crate::skip("FF_REQUIRE_ROOT", "network namespaces need root");
        return false;
    }
    if !ip(&["-V"]).status.success() {
        crate::skip("FF_REQUIRE_ROOT", "network namespaces need `ip` (iproute2)");
        return false;
    }
    true
}

/// Runs `ip ARGS`.
fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| Output {
            status: failed_status(),
            stdout: Vec::new(),
            stderr: e.to_string().into_bytes(),
        })
}

#[cfg(unix)]
fn failed_status() -> std::process::ExitStatus {
    std::os::unix::process::ExitStatusExt::from_raw(1 << 8)
}

#[cfg(not(unix))]
fn failed_status() -> std::process::ExitStatus {
    std::os::windows::process::ExitStatusExt::from_raw(1)
}

/// Runs `ip ARGS`, which must succeed.
///
/// # Panics
/// When it fails.
fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the `ff-test-<pid>-*` namespaces of test processes that are
/// gone.
fn clear_stale() {
    let listed = ip(&["netns", "list"]);
    for line in String::from_utf8_lossy(&listed.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if ff_process::liveness(pid, None) == ff_process::Liveness::Dead {
            let _ = ip(&["netns", "delete", name]);
        }
    }
}

/// A network namespace the test made, with its loopback up; deleted on
/// drop.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// A new namespace.
    ///
    /// # Panics
    /// When it cannot be made (call [`available`] first).
    #[must_use]
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        clear_stale();
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip_ok(&["netns", "add", &name]);
        let ns = Self { name };
        ip_ok(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program`, to be run inside the namespace (`ip netns exec`).
    #[must_use]
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.name]);
    }
}

/// A veth pair between two namespaces, each end with its address (a /30
/// of its own per link), up.
#[derive(Debug)]
pub struct Link {
    ends: [(String, String); 2],
}

impl Link {
    /// Joins `a` (address `a_addr`) and `b` (`b_addr`), both in one /30,
    /// given without the prefix length (say `10.213.1.1` and `10.213.1.2`).
    /// `tag` names the ends (`<tag>a`, `<tag>b`: at most 14 characters).
    ///
    /// # Panics
    /// When the pair cannot be made.
    #[must_use]
    pub fn new(tag: &str, a: &Namespace, a_addr: &str, b: &Namespace, b_addr: &str) -> Self {
        let (a_if, b_if) = (format!("{tag}a"), format!("{tag}b"));
        ip_ok(&[
            "link", "add", &a_if, "netns", &a.name, "type", "veth", "peer", "name", &b_if, "netns",
            &b.name,
        ]);
        for (ns, ifname, addr) in [(a, &a_if, a_addr), (b, &b_if, b_addr)] {
            ip_ok(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{addr}/30"),
                "dev",
                ifname,
            ]);
            ip_ok(&["-n", &ns.name, "link", "set", ifname, "up"]);
        }
        Self {
            ends: [(a.name.clone(), a_if), (b.name.clone(), b_if)],
        }
    }

    fn set(&self, state: &str) {
        for (ns, ifname) in &self.ends {
            ip_ok(&["-n", ns, "link", "set", ifname, state]);
        }
    }

    /// Cuts the link: both ends down; packets on it are dropped.
    pub fn cut(&self) {
        self.set("down");
    }

    /// Brings the link back.
    pub fn heal(&self) {
        self.set("up");
    }
}
