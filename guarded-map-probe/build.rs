//! With the feature `programs`, builds the kernel-side programs of `guarded-map-ebpf` for the BPF
//! target (aya-build: nightly cargo with `-Z build-std=core`, linked by `bpf-linker`) into `OUT_DIR`,
//! where the probe embeds them. Without it, does nothing, so that `cargo check --workspace` and
//! every other build of the workspace need stable Rust alone; the probe then says it has no programs.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "programs")]
    probe::build();
}

#[cfg(feature = "programs")]
mod probe {
    use std::path::Path;

    pub fn build() {
        let manifest_dir =
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        // The programs copy the records whose layout `guarded-map-probe-common` defines: a change
        // there must rebuild them (aya-build watches the programs' own crate only).
        println!("cargo:rerun-if-changed=../guarded-map-probe-common/src");
        let root = Path::new(&manifest_dir).join("../guarded-map-ebpf");
        let root = root.to_str().expect("the workspace path is UTF-8");
        let package = aya_build::Package {
            name: "guarded-map-ebpf",
            root_dir: root,
            ..Default::default()
        };
        if let Err(err) = aya_build::build_ebpf([package], aya_build::Toolchain::default()) {
            panic!(
                "guarded-map-probe (feature `programs`): building the eBPF programs failed: {err:#}\n\
                 They need the nightly toolchain with `rust-src` and `bpf-linker` built for LLVM 22; \
                 `./scripts/test` installs both (see the README)."
            );
        }
    }
}
