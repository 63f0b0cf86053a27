//! `install(addr)?;` written as a statement drops the returned `Exporter` at once: the endpoint
//! must keep serving anyway. (Its own process: the exporter installs the global recorder.)

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use guarded_map::prometheus::{self, InstallError};
use guarded_map_tests::scrape;

/// A loopback port that was free a moment ago.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

#[test]
fn install_as_a_statement_keeps_serving() -> Result<(), InstallError> {
    let addr = free_addr();
    prometheus::install(&addr.to_string())?;
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        let (status, body) = scrape::get(addr, "/metrics").expect("the endpoint still serves");
        assert_eq!(status, 200, "{body}");
    }
    Ok(())
}
