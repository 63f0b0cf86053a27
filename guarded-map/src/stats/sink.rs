//! Where rare events leave the statistics layer: a contended lock wait, an RCU publish and an
//! adaptive map's switch are
//! counted here, and also matter to the probe's hooks and to the metrics histograms, which sit above
//! this layer. Those layers install a [`Sink`] once (the map does, when the first one is built), so
//! the statistics never call up.

use std::sync::OnceLock;
use std::time::Duration;

use guarded_map_probe_common::{ActiveBackend, SwitchReason};

use crate::descriptor::Descriptor;

/// What happens to a rare event beyond its counts.
pub(crate) struct Sink {
    /// A lock acquisition waited this long; called whether or not the map counts statistics.
    pub(crate) waited: fn(Duration),
    /// A counting map of this descriptor waited this long for a lock.
    pub(crate) observe_wait: fn(&'static Descriptor, Duration),
    /// A counting map of this descriptor took this long to publish a new version.
    pub(crate) observe_publish: fn(&'static Descriptor, Duration),
    /// A counting adaptive map of this descriptor switched, and took this long.
    pub(crate) switched: fn(&'static Descriptor, Switch, Duration),
}

/// One switch of an adaptive map.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Switch {
    pub(crate) from: ActiveBackend,
    pub(crate) to: ActiveBackend,
    pub(crate) reason: SwitchReason,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the sink; the first one installed stays.
pub(crate) fn install(sink: impl FnOnce() -> Sink) {
    SINK.get_or_init(sink);
}

pub(super) fn get() -> Option<&'static Sink> {
    SINK.get()
}
