//! [`MirrorWriter`]: user-space writes to a mirrored kernel map, handed to the mirror in order.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use guarded_map_probe_common::change::{self, SEQ_SLOT};
use parking_lot::RwLock;

use super::map::BpfMap;
use super::plain::Plain;
use super::record::{Local, Pending};

/// Writes to a mirror's kernel map and hands each write to the mirror, which applies it in its
/// place among the kernel program's changes ([`Mirror::writer`](super::Mirror::writer)).
pub struct MirrorWriter<K, V> {
    pub(super) kernel: BpfMap<K, V>,
    /// The counters of an incremental mirror; `None` for a full-sync one.
    pub(super) counters: Option<BpfMap<u32, u64>>,
    pub(super) tx: Sender<Local<K, V>>,
    /// Held shared from the system call to the send (the mirror's notes say why).
    pub(super) in_flight: Arc<RwLock<()>>,
}

impl<K: Plain, V: Plain> MirrorWriter<K, V> {
    /// Sets `key` to `value` in the kernel map; the mirror follows at its next poll.
    pub fn update(&self, key: K, value: V) -> io::Result<()> {
        let _in_flight = self.in_flight.read();
        self.kernel.update(key, value)?;
        self.tell(change::SET, key, value)
    }

    /// Removes `key` from the kernel map; `false` if it was absent. The mirror follows at its
    /// next poll.
    pub fn delete(&self, key: K) -> io::Result<bool> {
        let _in_flight = self.in_flight.read();
        let removed = self.kernel.delete(key)?;
        if removed {
            self.tell(change::DELETE, key, V::default())?;
        }
        Ok(removed)
    }

    fn tell(&self, kind: u32, key: K, value: V) -> io::Result<()> {
        let after = match &self.counters {
            Some(counters) => counters.lookup(SEQ_SLOT)?.unwrap_or(0),
            None => 0,
        };
        let change = Pending {
            kind,
            key,
            value,
            time_ns: 0,
        };
        // A dropped mirror has nothing left to follow: the kernel write stands.
        let _ = self.tx.send(Local { after, change });
        Ok(())
    }

    /// A second writer to the same mirror.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(MirrorWriter {
            kernel: self.kernel.try_clone()?,
            counters: self.counters.as_ref().map(BpfMap::try_clone).transpose()?,
            tx: self.tx.clone(),
            in_flight: Arc::clone(&self.in_flight),
        })
    }
}
