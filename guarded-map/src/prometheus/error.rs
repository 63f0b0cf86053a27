//! [`InstallError`]: why an exporter or a recorder could not be installed.

use std::fmt;
use std::net::SocketAddr;

/// Why [`install`](super::install), [`Builder::install`](super::Builder::install) or
/// [`install_recorder`](super::install_recorder) failed. Nothing was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallError {
    /// The address is not `IP:PORT`.
    Address {
        /// The address as given.
        addr: String,
    },
    /// The address could not be bound (in use, not local, not permitted).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the operating system said.
        reason: String,
    },
    /// A global `metrics` recorder is installed already (the exporter was installed before, or
    /// another one was).
    RecorderInstalled,
    /// A [`Builder`](super::Builder) setting is out of range.
    Setting {
        /// The builder method that set it.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The server's thread or runtime could not be started.
    Start {
        /// What the operating system said.
        reason: String,
    },
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Address { addr } => write!(
                f,
                "invalid listen address {addr:?}: expected IP:PORT, such as 127.0.0.1:9090"
            ),
            InstallError::Bind { addr, reason } => write!(f, "cannot listen on {addr}: {reason}"),
            InstallError::RecorderInstalled => {
                f.write_str("a global metrics recorder is already installed")
            }
            InstallError::Setting { setting, reason } => write!(f, "invalid {setting}: {reason}"),
            InstallError::Start { reason } => {
                write!(f, "cannot start the metrics server: {reason}")
            }
        }
    }
}

impl std::error::Error for InstallError {}
