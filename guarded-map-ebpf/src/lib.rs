//! Kernel-side eBPF programs of guarded-map's probe, and the `#[repr(C)]` records they share with user
//! space.
//!
//! The programs are not written yet; this crate holds the place so the workspace has its final shape.
#![no_std]
