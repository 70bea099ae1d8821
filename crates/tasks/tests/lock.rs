//! Store locks under contention, on the local store, Swift and S3 (Swift's s3api): threads
//! released together take one lock, many rounds; never two hold it at once, every round
//! someone gets it, the others are refused `in_progress`, and nothing is left behind.
//! Swift and S3 skip (saying why) when the test Swift is not configured.

use cloudimg_pipeline::local::LocalStore;
use cloudimg_pipeline::s3::{S3Config, S3Store};
use cloudimg_pipeline::swift::{SwiftAuth, SwiftStore};
use cloudimg_pipeline::{store::list_all, ObjectPath, ObjectStore};
use cloudimg_tasks::lock::StoreLock;
use cloudimg_tasks::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

const THREADS: usize = 4;

/// `rounds` rounds of [`THREADS`] threads taking the lock `c/x.lock` at once, holding it
/// for a moment.
fn contend(store: Arc<dyn ObjectStore>, c: &str, rounds: usize) {
    store.ensure_container(c).unwrap();
    let holders = Arc::new(AtomicUsize::new(0));
    let (mut won, mut refused) = (0, 0);
    for round in 0..rounds {
        let gate = Arc::new(Barrier::new(THREADS));
        let runs: Vec<_> = (0..THREADS)
            .map(|_| {
                let (store, gate, holders) = (store.clone(), gate.clone(), holders.clone());
                let c = c.to_string();
                std::thread::spawn(move || {
                    gate.wait();
                    let l = StoreLock::acquire(&store, ObjectPath::new(c, "x.lock"), "a test")?;
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    holders.fetch_sub(1, Ordering::SeqCst);
                    drop(l);
                    Ok::<_, cloudimg_tasks::Error>(())
                })
            })
            .collect();
        let mut round_won = 0;
        for r in runs {
            match r.join().unwrap() {
                Ok(()) => round_won += 1,
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::InProgress, "round {round}: {e}");
                    assert!(e.to_string().contains("is in progress"), "{e}");
                    refused += 1;
                }
            }
        }
        assert!(round_won >= 1, "round {round}: nobody took the lock");
        won += round_won;
        let left = list_all(&*store, c, "x.lock").unwrap();
        assert!(left.is_empty(), "round {round}: left {left:?}");
    }
    eprintln!("{rounds} rounds of {THREADS}: {won} took the lock, {refused} refused");
}

#[test]
fn one_holder_at_a_time_on_the_local_store() {
    let d = tempfile::tempdir().unwrap();
    contend(Arc::new(LocalStore::new(d.path()).unwrap()), "c", 30);
}

fn unique(tag: &str) -> String {
    format!("cimg-{tag}-{}", uuid::Uuid::new_v4().simple())
}

/// Deletes the test's (empty) container, a bucket to S3, when dropped: `swift delete`.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(env) = cloudimg_fixtures::env::swift() else {
            return;
        };
        let _ = std::process::Command::new("swift")
            .env("ST_AUTH", &env.auth_url)
            .env("ST_USER", &env.user)
            .env("ST_KEY", &env.key)
            .env_remove("OS_AUTH_URL")
            .env_remove("OS_STORAGE_URL")
            .args(["delete", &self.0])
            .output();
    }
}

#[test]
fn one_holder_at_a_time_on_swift() {
    let Some(env) = cloudimg_fixtures::env::swift() else {
        return;
    };
    let store: Arc<dyn ObjectStore> = Arc::new(SwiftStore::new(SwiftAuth::V1 {
        auth_url: env.auth_url.clone(),
        user: env.user.clone(),
        key: env.key.clone(),
    }));
    let c = Cleanup(unique("lock"));
    contend(store, &c.0, 10);
}

#[test]
fn one_holder_at_a_time_on_s3() {
    let Some(env) = cloudimg_fixtures::env::swift() else {
        return;
    };
    let store: Arc<dyn ObjectStore> = Arc::new(S3Store::new(S3Config {
        endpoint: env.s3_endpoint,
        region: std::env::var("S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        access_key: env.s3_access_key,
        secret_key: env.s3_secret_key,
    }));
    // s3api's buckets are the account's containers.
    let c = Cleanup(unique("lock"));
    contend(store, &c.0, 10);
}
