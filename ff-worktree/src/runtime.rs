//! The runtime the library needs, checked up front: a tokio runtime with
//! its IO and time drivers (git runs as child processes under timeouts).
//! Without them tokio panics deep inside the first git call; this turns
//! that into an error that says what to change.

use std::time::Duration;

/// Checks that the calling task runs on a tokio runtime with IO and time
/// enabled.
///
/// # Errors
/// [`InvalidInput`](ff_traits::Error::InvalidInput) naming what to enable.
pub(crate) fn check() -> crate::Result<()> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(refuse("no tokio runtime is running"));
    }
    // tokio offers no query for its drivers; making a timer or registering
    // a descriptor panics without one, so try each where the panic can be
    // caught. (The default panic hook still prints tokio's own message.)
    if std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_err() {
        return Err(refuse("the tokio runtime has no timer (time is disabled)"));
    }
    if !io_enabled() {
        return Err(refuse(
            "the tokio runtime has no IO driver (IO is disabled)",
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn io_enabled() -> bool {
    std::panic::catch_unwind(|| tokio::net::UnixDatagram::pair().is_ok()).unwrap_or(false)
}

#[cfg(not(unix))]
fn io_enabled() -> bool {
    // Child processes on Windows need the IO driver too; a loopback socket
    // is the cheapest thing that registers with it.
    std::panic::catch_unwind(|| {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| {
                s.set_nonblocking(true)?;
                tokio::net::UdpSocket::from_std(s)
            })
            .is_ok()
    })
    .unwrap_or(false)
}

fn refuse(what: &str) -> crate::Error {
    crate::Error::invalid_input(
        "runtime",
        format!(
            "{what}; ForgeFlow needs tokio with IO and time enabled: use #[tokio::main] or a \
             runtime Builder with enable_all()"
        ),
    )
}
