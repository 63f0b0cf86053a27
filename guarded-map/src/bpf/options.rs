//! What a mirror is told ([`MirrorOptions`]) and what it tells ([`MirrorStats`]).

use std::time::Duration;

use super::lag::Lag;

/// How a mirror lists, how often it syncs or reconciles, and what its metrics are labelled.
///
/// ```
/// use std::time::Duration;
/// use guarded_map::bpf::MirrorOptions;
///
/// let options = MirrorOptions::default()
///     .every(Duration::from_millis(500))
///     .reconcile_every(Duration::from_secs(30))
///     .chunk(1024);
/// assert_eq!(options.reconcile_interval(), Duration::from_secs(30));
/// ```
#[derive(Clone, Debug)]
pub struct MirrorOptions {
    pub(super) chunk: u32,
    pub(super) every: Duration,
    pub(super) reconcile_every: Duration,
    pub(super) gap_timeout: Duration,
    pub(super) label: Option<String>,
}

impl Default for MirrorOptions {
    /// Batches of 256 entries; a full sync every second; reconciliation every 10 seconds; a
    /// missing change record waited for 1 second.
    fn default() -> Self {
        MirrorOptions {
            chunk: 256,
            every: Duration::from_secs(1),
            reconcile_every: Duration::from_secs(10),
            gap_timeout: Duration::from_secs(1),
            label: None,
        }
    }
}

impl MirrorOptions {
    /// Entries per batch lookup at the start of a listing (it doubles where a hash bucket needs
    /// more).
    #[must_use]
    pub fn chunk(mut self, entries: u32) -> Self {
        self.chunk = entries.max(1);
        self
    }

    /// How often a full-sync mirror lists its kernel map.
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Self {
        self.every = interval;
        self
    }

    /// How often an incremental mirror reconciles (`Duration::ZERO`: only when the kernel reports
    /// a lost record, or when asked with [`Mirror::sync`](super::Mirror::sync)).
    #[must_use]
    pub fn reconcile_every(mut self, interval: Duration) -> Self {
        self.reconcile_every = interval;
        self
    }

    /// How long a missing change record is waited for before the mirror goes on without it (and
    /// reconciles).
    #[must_use]
    pub fn gap_timeout(mut self, timeout: Duration) -> Self {
        self.gap_timeout = timeout;
        self
    }

    /// The `bpf_map` label of the mirror's metrics (default: the kernel map's name).
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The reconciliation interval set.
    pub fn reconcile_interval(&self) -> Duration {
        self.reconcile_every
    }
}

/// What a mirror has done ([`Mirror::stats`](super::Mirror::stats)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MirrorStats {
    /// Changes applied to the guarded map: change records, the mirror's own writes, and the
    /// differences a full sync found.
    pub changes: u64,
    /// Listings of the whole kernel map: the first, full syncs and reconciliations.
    pub syncs: u64,
    /// Reconciliations (incremental mode).
    pub reconciliations: u64,
    /// Entries found different at reconciliation, and corrected (incremental mode).
    pub drift: u64,
    /// Change records the kernel program could not write (its ring was full).
    pub lost: u64,
    /// Missing change numbers given up on after the gap timeout.
    pub gaps: u64,
    /// Changes the guarded map refused (full at its `max_len`).
    pub refused: u64,
    /// Batches doubled because a hash bucket did not fit (`ENOSPC`), over all listings.
    pub grown: u64,
    /// `true` once a listing had to walk key by key (the map type has no batch lookup).
    pub by_key: bool,
    /// How long the last listing and its application took.
    pub last_sync: Duration,
    /// Change records received but waiting for an earlier number.
    pub pending: usize,
    /// From kernel change to application (incremental mode).
    pub lag: Lag,
}
