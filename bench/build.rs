//! Records, for the results file, the versions of the contenders as Cargo.lock resolved them and the
//! compiler that built the benchmark: a figure without the versions behind it cannot be compared.

use std::{env, fs, path::Path, process::Command};

/// The crates whose versions the results name.
const CRATES: [&str; 7] = [
    "guarded-map",
    "dashmap",
    "papaya",
    "scc",
    "arc-swap",
    "hashbrown",
    "parking_lot",
];

fn main() {
    let lock = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = fs::read_to_string(&lock).unwrap_or_default();
    let versions: Vec<String> = CRATES
        .iter()
        .map(|name| match locked_versions(&text, name) {
            v if v.is_empty() => format!("{name}=unknown"),
            v => format!("{name}={}", v.join("/")),
        })
        .collect();
    println!(
        "cargo:rustc-env=BENCH_CRATE_VERSIONS={}",
        versions.join(",")
    );

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".into(), |v| v.trim().to_owned());
    println!("cargo:rustc-env=BENCH_RUSTC_VERSION={version}");
}

/// Every locked version of `name` (hashbrown appears twice: ours, and the one dashmap pins).
fn locked_versions<'a>(lock: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.match_indices(&needle)
        .filter_map(|(at, _)| {
            let start = at + needle.len();
            let len = lock[start..].find('"')?;
            Some(&lock[start..start + len])
        })
        .collect()
}
