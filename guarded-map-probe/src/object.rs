//! The eBPF object `build.rs` built (`guarded-map-ebpf`): the probe's programs and the mirror's.

/// The object's bytes; empty without the feature `programs`, which loaders then report
/// ([`ProbeError::NoPrograms`](crate::ProbeError::NoPrograms)).
#[cfg(feature = "programs")]
pub(crate) static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/guarded-map-ebpf"));
#[cfg(not(feature = "programs"))]
pub(crate) static OBJECT: &[u8] = &[];
