//! `guarded-map-probe plot` as a user runs it: a recording in, an SVG out; bad input is one line
//! on stderr and exit status 1.

use std::process::Command;

fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_guarded-map-probe"))
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("guarded-map-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_recording_becomes_a_picture() {
    let recording = scratch("in.jsonl");
    let lines: String = (0..30u64)
        .map(|s| {
            format!(
                "{{\"unix_ms\": {}, \"pid\": 1, \"maps\": [{{\"label\": \"app.sessions\", \"len\": {}, \"capacity\": 4096, \"max_len\": 10000}}]}}\n",
                1_700_000_000_000 + s * 1000,
                s * 50
            )
        })
        .collect();
    std::fs::write(&recording, lines).unwrap();
    let picture = scratch("out.svg");
    let out = probe()
        .args(["plot", "--json"])
        .arg(&recording)
        .arg("--out")
        .arg(&picture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(&picture).unwrap();
    assert!(svg.starts_with("<svg"));
    // 50 entries a second, 8 550 to go at the last sample.
    assert!(
        svg.contains("app.sessions: +50 entries/s, max_len in 171 s"),
        "{svg}"
    );
}

#[test]
fn a_bad_recording_is_one_line_and_status_1() {
    let recording = scratch("bad.jsonl");
    std::fs::write(&recording, "{\"unix_ms\": 1, \"maps\": []}\n{oops\n").unwrap();
    let out = probe()
        .args(["plot", "--json"])
        .arg(&recording)
        .args(["--out", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    let missing = probe()
        .args([
            "plot",
            "--json",
            "/nonexistent/recording.jsonl",
            "--out",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
}
