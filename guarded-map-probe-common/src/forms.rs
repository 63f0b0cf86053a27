//! The two forms of an adaptive map and why it switches between them: the codes a [`Summary`]
//! carries, and their names in metric labels and the probe (`guarded_map` re-exports both types).
//!
//! [`Summary`]: crate::Summary

/// The form an adaptive map has: [`Rcu`](ActiveBackend::Rcu) or [`Sharded`](ActiveBackend::Sharded).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActiveBackend {
    /// The map is an `Rcu` store now.
    Rcu = 1,
    /// The map is a `Sharded` store now.
    Sharded = 2,
}

impl ActiveBackend {
    /// The lowercase name metrics and the probe use (`"rcu"`, `"sharded"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ActiveBackend::Rcu => "rcu",
            ActiveBackend::Sharded => "sharded",
        }
    }

    /// The form's code where a byte holds it; 0 is none.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The form of a [`code`](Self::code), if it is one.
    pub const fn from_code(code: u8) -> Option<ActiveBackend> {
        match code {
            1 => Some(ActiveBackend::Rcu),
            2 => Some(ActiveBackend::Sharded),
            _ => None,
        }
    }

    /// The other one.
    pub const fn other(self) -> ActiveBackend {
        match self {
            ActiveBackend::Rcu => ActiveBackend::Sharded,
            ActiveBackend::Sharded => ActiveBackend::Rcu,
        }
    }
}

/// Why an adaptive map switched.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SwitchReason {
    /// The cost model found the other form cheaper for the operations seen.
    CostModel = 1,
    /// `switch_backend` or `pin_backend` was called (or the probe's `pin`).
    Requested = 2,
}

impl SwitchReason {
    /// Every reason.
    pub const ALL: [SwitchReason; 2] = [SwitchReason::CostModel, SwitchReason::Requested];

    /// The label value of `guarded_map_backend_switches_total`'s `reason`, and the probe's word.
    pub const fn as_str(self) -> &'static str {
        match self {
            SwitchReason::CostModel => "cost_model",
            SwitchReason::Requested => "requested",
        }
    }

    /// The reason's code where a byte holds it; 0 is none.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The reason of a [`code`](Self::code), if it is one.
    pub const fn from_code(code: u8) -> Option<SwitchReason> {
        match code {
            1 => Some(SwitchReason::CostModel),
            2 => Some(SwitchReason::Requested),
            _ => None,
        }
    }
}
