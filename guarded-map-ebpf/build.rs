//! The kernel programs use 64-bit atomic fetch-and-add (`BPF_ATOMIC | BPF_FETCH`, Linux 5.12).
//! LLVM emits it only with the `alu32` feature (rustc asks `bpf-linker` for the `generic` CPU, and
//! aya-build sets the flags rustc gets, so it is asked for here, as a linker argument).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("bpf") {
        println!("cargo:rustc-link-arg=--cpu-features=+alu32");
    }
}
