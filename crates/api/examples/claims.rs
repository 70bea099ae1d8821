//! Claim throughput of the task queue: N no-op tasks through W workers, each with its own
//! connection pool as separate `cloudimg worker` processes have, claiming with the same
//! statement (`db::tasks::claim`: `FOR UPDATE SKIP LOCKED` on PostgreSQL) and finishing
//! with the same fenced UPDATE. Prints one JSON line: wall time, tasks per second, claim
//! latency (the claim statement's round trip as each worker sees it) p50/p99/max, and
//! how many tasks were claimed more than once (must be 0).
//!
//! cargo run --release -p cloudimg-api --example claims -- DB_URL [TASKS] [WORKERS]
//! (benches/compare/claims.sh runs it on a fresh PostgreSQL database and on SQLite.)

use cloudimg_api::clock;
use cloudimg_api::db::tasks::{self, TaskRow};
use cloudimg_api::db::Db;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .ok_or("usage: claims DB_URL [TASKS] [WORKERS]")?;
    let n: usize = args
        .get(1)
        .map_or(Ok(1000), |s| s.parse())
        .map_err(|e| format!("{e}"))?;
    let w: usize = args
        .get(2)
        .map_or(Ok(4), |s| s.parse())
        .map_err(|e| format!("{e}"))?;
    let db = Db::connect(url).await?;
    let now = clock::now();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let id = uuid::Uuid::new_v4().to_string();
        let row = TaskRow {
            id: id.clone(),
            task_type: "import".into(),
            status: "pending".into(),
            owner: "bench".into(),
            input: "{}".into(),
            result: None,
            message: String::new(),
            created_at: now.clone(),
            updated_at: now.clone(),
            expires_at: None,
            attempts: 0,
            max_attempts: 3,
            phase: None,
            bytes_done: 0,
            bytes_total: 0,
        };
        tasks::insert(&db, &row).await.map_err(|e| e.to_string())?;
        ids.push(id);
    }
    let start = Instant::now();
    let mut workers = Vec::new();
    for k in 0..w {
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let db = Db::connect(&url).await?;
            let me = format!("bench-{k}");
            let mut lat = Vec::new();
            loop {
                let t0 = Instant::now();
                let lease = clock::after(Duration::from_secs(60));
                let got = tasks::claim(&db, &me, &lease, &clock::now())
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(t) = got else { break };
                lat.push(t0.elapsed());
                tasks::finish(
                    &db,
                    &t.id,
                    &me,
                    t.attempts,
                    "success",
                    Some("{}"),
                    "",
                    &clock::now(),
                    &clock::after(Duration::from_secs(3600)),
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            db.close().await;
            Ok::<_, String>(lat)
        }));
    }
    let mut lat = Vec::new();
    for h in workers {
        lat.extend(h.await.map_err(|e| e.to_string())??);
    }
    let wall = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let mut twice = 0;
    let mut done = 0;
    for id in &ids {
        let t = tasks::get(&db, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("task vanished")?;
        done += (t.status == "success") as usize;
        twice += (t.attempts != 1) as usize;
    }
    println!(
        "{{\"tasks\":{n},\"workers\":{w},\"claims\":{},\"done\":{done},\"claimed_twice\":{twice},\"wall_s\":{wall:.3},\"tasks_per_s\":{:.0},\"claim_p50_ms\":{:.2},\"claim_p99_ms\":{:.2},\"claim_max_ms\":{:.2}}}",
        lat.len(),
        n as f64 / wall,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    db.close().await;
    if twice > 0 || done != n {
        return Err(format!(
            "{twice} tasks claimed more than once, {done} of {n} done"
        ));
    }
    Ok(())
}
