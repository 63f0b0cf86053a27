//! A small axum service with a guarded state that serves guarded-map's metrics beside its own
//! routes, from its own server: the path for services that already have one.
//!
//! ```sh
//! cargo run --example axum -- --listen 127.0.0.1:3000
//! curl -X POST localhost:3000/items/tea/restock/5
//! curl -X POST localhost:3000/items/tea/buy
//! curl localhost:3000/items/tea
//! curl localhost:3000/metrics
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use clap::Parser;
use guarded_map::guarded_map;
use metrics_exporter_prometheus::PrometheusBuilder;

/// A shop's stock and prices.
#[guarded_map]
#[derive(Debug, Default)]
struct Shop {
    /// Items in stock, by item name.
    #[guarded(sharded)]
    stock: HashMap<String, u64>,
    /// Price in cents by item name: read by every request, rarely changed.
    #[guarded(rcu)]
    prices: HashMap<String, u64>,
}

#[derive(Parser, Debug)]
#[command(about = "A small shop service serving its guarded maps' metrics at /metrics")]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Stop after this many seconds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    duration: u64,
}

type Shared = Arc<Shop>;

async fn show(State(shop): State<Shared>, Path(item): Path<String>) -> (StatusCode, String) {
    match shop.prices.get_cloned(&item) {
        None => (StatusCode::NOT_FOUND, format!("no item {item}\n")),
        Some(cents) => {
            let stock = shop.stock.get_cloned(&item).unwrap_or(0);
            (
                StatusCode::OK,
                format!("{item}: {stock} in stock at {cents} cents\n"),
            )
        }
    }
}

async fn restock(
    State(shop): State<Shared>,
    Path((item, count)): Path<(String, u64)>,
) -> (StatusCode, String) {
    if !shop.prices.contains_key(&item) {
        return (StatusCode::NOT_FOUND, format!("no item {item}\n"));
    }
    let now = shop.stock.upsert(
        item.clone(),
        || 0,
        |n| {
            *n += count;
            *n
        },
    );
    (StatusCode::OK, format!("{item}: {now} in stock\n"))
}

async fn buy(State(shop): State<Shared>, Path(item): Path<String>) -> (StatusCode, String) {
    let sold = shop
        .stock
        .update(&item, |n| n.checked_sub(1).map(|left| *n = left));
    match sold {
        None => (StatusCode::NOT_FOUND, format!("no item {item}\n")),
        Some(None) => (StatusCode::CONFLICT, format!("{item} is sold out\n")),
        Some(Some(())) => (StatusCode::OK, format!("bought one {item}\n")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // Our recorder, prepared with guarded-map's buckets and descriptions; the route renders it.
    let handle = guarded_map::prometheus::install_recorder(PrometheusBuilder::new())?;

    let shop = Arc::new(Shop::default());
    for (item, cents) in [("tea", 450), ("coffee", 380), ("cake", 520)] {
        shop.prices.insert(item.to_owned(), cents);
    }
    let app = Router::new()
        .route("/items/{item}", get(show))
        .route("/items/{item}/restock/{count}", post(restock))
        .route("/items/{item}/buy", post(buy))
        .with_state(Arc::clone(&shop))
        .merge(guarded_map::prometheus::axum::router(handle));

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("serving http://{}/", listener.local_addr()?);
    let duration = args.duration;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let ctrl_c = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            if duration == 0 {
                ctrl_c.await;
            } else {
                tokio::select! {
                    () = ctrl_c => {}
                    () = tokio::time::sleep(Duration::from_secs(duration)) => {}
                }
            }
        })
        .await?;
    Ok(())
}
