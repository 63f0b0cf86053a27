//! The table of open connections: the cap, and whom to close when a new connection needs room.
//!
//! Like nginx reusing idle keep-alive connections when it runs out, a full table closes the
//! connection idle longest rather than refuse a new one, so a flood of idle connections cannot
//! lock a scraper out; a connection in the middle of a request is closed only when none is idle.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::tracked::Watch;

pub(super) struct Connections {
    max: usize,
    epoch: Instant,
    open: Mutex<Vec<Arc<Watch>>>,
}

impl Connections {
    pub(super) fn new(max: usize) -> Self {
        Connections {
            max,
            epoch: Instant::now(),
            open: Mutex::new(Vec::new()),
        }
    }

    /// Registers a new connection, closing another first if the table is full.
    pub(super) fn admit(&self, now: Instant) -> Arc<Watch> {
        let watch = Arc::new(Watch::new(self.epoch, now));
        let mut open = self.open.lock();
        while open.len() >= self.max {
            evict_first(&mut open);
        }
        open.push(Arc::clone(&watch));
        watch
    }

    /// Closes the connection first in the eviction order; `false` if there is none.
    pub(super) fn evict_one(&self) -> bool {
        evict_first(&mut self.open.lock())
    }

    /// Forgets a connection that ended (it may have been evicted already).
    pub(super) fn remove(&self, watch: &Arc<Watch>) {
        let mut open = self.open.lock();
        if let Some(i) = open.iter().position(|w| Arc::ptr_eq(w, watch)) {
            open.swap_remove(i);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.open.lock().len()
    }
}

fn evict_first(open: &mut Vec<Arc<Watch>>) -> bool {
    let first = open
        .iter()
        .enumerate()
        .min_by_key(|(_, w)| w.eviction_rank())
        .map(|(i, _)| i);
    match first {
        Some(i) => {
            open.swap_remove(i).evict();
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_table_closes_the_idlest_connection() {
        let table = Connections::new(3);
        let first = table.admit(Instant::now());
        tokio::time::advance(Duration::from_millis(10)).await;
        let second = table.admit(Instant::now());
        tokio::time::advance(Duration::from_millis(10)).await;
        let third = table.admit(Instant::now());
        assert_eq!(table.len(), 3);
        // `first` is the oldest idle one...
        let fourth = table.admit(Instant::now());
        assert_eq!(table.len(), 3);
        assert!(is_evicted(&first).await);
        assert!(!is_evicted(&second).await);
        // ...and removing an evicted connection again is harmless.
        table.remove(&first);
        assert_eq!(table.len(), 3);
        let _ = (third, fourth);
    }

    async fn is_evicted(watch: &Watch) -> bool {
        tokio::select! {
            biased;
            () = watch.evicted() => true,
            () = std::future::ready(()) => false,
        }
    }

    #[tokio::test]
    async fn evicting_from_an_empty_table_says_so() {
        let table = Connections::new(1);
        assert!(!table.evict_one());
        let only = table.admit(Instant::now());
        assert!(table.evict_one());
        assert_eq!(table.len(), 0);
        drop(only);
    }
}
