//! Changes on their way into a mirror: a kernel change record read out of the ring, a local write,
//! and where each goes in the order of application.

use guarded_map_probe_common::change::{Change, ChangeHeader};

use super::plain::{Plain, bytes_of_mut};

/// A change waiting for its turn.
pub(super) struct Pending<K, V> {
    pub(super) kind: u32,
    pub(super) key: K,
    pub(super) value: V,
    /// The kernel's timestamp, or 0 for the mirror's own writes.
    pub(super) time_ns: u64,
}

/// Where a pending change goes in the order: a kernel record by its number (`local` 0), a local
/// write after the record numbered `seq` (`local` its arrival count, from 1).
pub(super) type Order = (u64, u64);

/// A local write, sent by a [`MirrorWriter`](super::MirrorWriter) to its mirror.
pub(super) struct Local<K, V> {
    /// The last kernel record number given when the write had been made.
    pub(super) after: u64,
    pub(super) change: Pending<K, V>,
}

/// The change record in `bytes`, if it is one of `K` keys and `V` values.
pub(super) fn read_change<K: Plain, V: Plain>(bytes: &[u8]) -> Option<Change<K, V>> {
    if bytes.len() < size_of::<Change<K, V>>() {
        return None;
    }
    let u64_at = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let u16_at = |at: usize| u16::from_ne_bytes(bytes[at..at + 2].try_into().expect("2 bytes"));
    let header = ChangeHeader {
        seq: u64_at(std::mem::offset_of!(ChangeHeader, seq)),
        time_ns: u64_at(std::mem::offset_of!(ChangeHeader, time_ns)),
        kind: u32::from_ne_bytes(
            bytes[std::mem::offset_of!(ChangeHeader, kind)..][..4]
                .try_into()
                .expect("4 bytes"),
        ),
        key_size: u16_at(std::mem::offset_of!(ChangeHeader, key_size)),
        value_size: u16_at(std::mem::offset_of!(ChangeHeader, value_size)),
    };
    let expected = Change::<K, V>::header(0, 0, 0);
    if (header.key_size, header.value_size) != (expected.key_size, expected.value_size) {
        return None;
    }
    let mut key = K::default();
    let mut value = V::default();
    let key_at = std::mem::offset_of!(Change<K, V>, key);
    let value_at = std::mem::offset_of!(Change<K, V>, value);
    bytes_of_mut(&mut key).copy_from_slice(&bytes[key_at..key_at + size_of::<K>()]);
    bytes_of_mut(&mut value).copy_from_slice(&bytes[value_at..value_at + size_of::<V>()]);
    Some(Change { header, key, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use guarded_map_probe_common::change;

    #[test]
    fn a_change_record_reads_back_and_a_foreign_one_does_not() {
        let header = Change::<u32, u64>::header(7, 99, change::SET);
        let mut bytes = vec![0u8; size_of::<Change<u32, u64>>()];
        bytes[..8].copy_from_slice(&7u64.to_ne_bytes());
        bytes[8..16].copy_from_slice(&99u64.to_ne_bytes());
        bytes[16..20].copy_from_slice(&change::SET.to_ne_bytes());
        bytes[20..22].copy_from_slice(&4u16.to_ne_bytes());
        bytes[22..24].copy_from_slice(&8u16.to_ne_bytes());
        let key_at = std::mem::offset_of!(Change<u32, u64>, key);
        let value_at = std::mem::offset_of!(Change<u32, u64>, value);
        bytes[key_at..key_at + 4].copy_from_slice(&5u32.to_ne_bytes());
        bytes[value_at..value_at + 8].copy_from_slice(&500u64.to_ne_bytes());
        let back = read_change::<u32, u64>(&bytes).expect("a u32 -> u64 record");
        assert_eq!((back.header, back.key, back.value), (header, 5, 500));
        assert!(
            read_change::<u64, u64>(&bytes).is_none(),
            "key size differs"
        );
        assert!(read_change::<u32, u64>(&bytes[..10]).is_none(), "too short");
    }
}
