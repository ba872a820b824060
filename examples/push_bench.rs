//! Push benchmark: notifications per second through `ApnsClient` and `FcmClient` to the
//! in-process test servers of `tests/api/push_servers.rs`, run as a separate process so
//! that a load generator such as h2load can measure the same server's ceiling
//! (`bench/push.sh` does both and prints them side by side).
//!
//!   push_bench serve DIR        start the APNs (h2c) and FCM servers; write into DIR the
//!                               .p8 key, the service-account JSON, `env` (the URLs), a
//!                               provider JWT, an access token and request bodies for h2load,
//!                               then `ready`; serve until killed
//!   push_bench send DIR [--apns N] [--fcm N] [--in-flight C] [--connections K]
//!                               send N notifications with each client, C at a time, and
//!                               print one line per service

#[path = "../tests/api/push_servers.rs"]
mod push_servers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use renrakumo::config::ApnsConfig;
use renrakumo::delivery::apns::ApnsClient;
use renrakumo::delivery::fcm::FcmClient;
use renrakumo::delivery::push::{ClientOptions, Notification, PushOutcome};

use push_servers::{APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, ApnsServer, FcmServer};

const TITLE: &str = "【重要】台風接近に伴う臨時休校のお知らせ";
const BODY: &str = "保護者各位\n台風の接近に伴い、明日は臨時休校とします。ご確認のうえ受信確認をお願いします。";
const MESSAGE_ID: &str = "0190b2c4-7d2a-7c3e-8f00-5a1b2c3d4e5f";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.first().map(String::as_str) {
        Some("serve") if args.len() == 2 => runtime.block_on(serve(Path::new(&args[1]))),
        Some("send") if args.len() >= 2 => runtime.block_on(send(Path::new(&args[1]), &args[2..])),
        _ => anyhow::bail!(
            "usage: push_bench serve DIR | push_bench send DIR [--apns N] [--fcm N] [--in-flight C] [--connections K]"
        ),
    }
}

async fn serve(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let apns = ApnsServer::start().await;
    let fcm = FcmServer::start().await;
    apns.quiet();
    fcm.quiet();
    let keys = push_servers::keys();
    std::fs::write(dir.join("apns.p8"), &keys.apns_p8)?;
    fcm.write_credentials(dir);

    // What h2load needs to send requests the servers accept.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(APNS_KEY_ID.to_owned());
    let iat = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = serde_json::json!({"iss": APNS_TEAM_ID, "iat": iat});
    let jwt =
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ec_pem(keys.apns_p8.as_bytes())?)?;
    std::fs::write(dir.join("apns.jwt"), jwt)?;
    std::fs::write(dir.join("fcm.token"), fcm.issue_access_token())?;
    let n = notification(0);
    std::fs::write(dir.join("apns.json"), renrakumo::delivery::apns::payload(&n).map_err(anyhow::Error::msg)?)?;
    let fcm_n = Notification { token: fcm_token(0), ..n };
    std::fs::write(dir.join("fcm.json"), renrakumo::delivery::fcm::message(&fcm_n).map_err(anyhow::Error::msg)?)?;
    let env = format!(
        "APNS_URL={}\nFCM_URL={}\nAPNS_TOPIC={APNS_TOPIC}\nAPNS_DEVICE={}\nFCM_PROJECT={}\n",
        apns.url.as_str().trim_end_matches('/'),
        fcm.url.as_str().trim_end_matches('/'),
        apns_token(0),
        push_servers::FCM_PROJECT,
    );
    std::fs::write(dir.join("env"), env)?;
    std::fs::write(dir.join("ready"), "")?;
    println!("serving APNs at {} and FCM at {}", apns.url, fcm.url);
    // Report what was accepted now and then, so that the script can check the servers' side.
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(dir.join("accepted"), format!("{} {}\n", apns.accepted(), fcm.accepted()))?;
    }
}

fn apns_token(i: usize) -> String {
    format!("{i:08x}{}", "a1b2c3d4".repeat(7))
}

fn fcm_token(i: usize) -> String {
    format!("bench-{i}:APA91b{}", "Xy_z-0".repeat(24))
}

fn notification(i: usize) -> Notification {
    Notification {
        token: apns_token(i),
        title: TITLE.to_owned(),
        body: BODY.to_owned(),
        message_id: MESSAGE_ID.to_owned(),
        emergency: i.is_multiple_of(10),
        collapse_id: MESSAGE_ID.to_owned(),
        apns_id: Some(uuid::Uuid::from_u128(0x0190_b2c4_7d2a_7c3e_8f00_0000_0000_0000 | i as u128)),
    }
}

struct Args {
    apns: usize,
    fcm: usize,
    in_flight: usize,
    connections: Option<usize>,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut parsed = Args { apns: 100_000, fcm: 50_000, in_flight: 256, connections: None };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value: usize = it.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a number"))?.parse()?;
        match flag.as_str() {
            "--apns" => parsed.apns = value,
            "--fcm" => parsed.fcm = value,
            "--in-flight" => parsed.in_flight = value.max(1),
            "--connections" => parsed.connections = Some(value.max(1)),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(parsed)
}

async fn send(dir: &Path, args: &[String]) -> anyhow::Result<()> {
    let args = parse(args)?;
    let env = std::fs::read_to_string(dir.join("env"))?;
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
            .ok_or_else(|| anyhow::anyhow!("{name} missing in {}", dir.join("env").display()))
    };
    let mut options = ClientOptions::default();
    if let Some(k) = args.connections {
        options = options.with_connections(k);
    }
    if args.apns > 0 {
        let config = ApnsConfig {
            key_pem: std::fs::read_to_string(dir.join("apns.p8"))?,
            key_id: APNS_KEY_ID.to_owned(),
            team_id: APNS_TEAM_ID.to_owned(),
            topic: APNS_TOPIC.to_owned(),
        };
        let client = Arc::new(ApnsClient::with_options(&config, &var("APNS_URL")?.parse()?, &options)?);
        let send = move |i: usize| {
            let client = client.clone();
            async move { client.send(&notification(i)).await }
        };
        report("apns", args.apns, args.in_flight, options.connections, send).await;
    }
    if args.fcm > 0 {
        let credentials: PathBuf = dir.join("service-account.json");
        let client = Arc::new(FcmClient::with_options(&credentials, &var("FCM_URL")?.parse()?, &options)?);
        let send = move |i: usize| {
            let client = client.clone();
            async move { client.send(&Notification { token: fcm_token(i), ..notification(i) }).await }
        };
        report("fcm", args.fcm, args.in_flight, options.connections, send).await;
    }
    Ok(())
}

/// Runs `n` sends with `in_flight` at a time after a warm-up and prints one line.
async fn report<F, Fut>(name: &str, n: usize, in_flight: usize, connections: usize, send: F)
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = PushOutcome> + Send,
{
    let warm_up = (n / 20).clamp(100, 2_000);
    run(warm_up, in_flight, send.clone()).await;
    let started = Instant::now();
    let (mut latencies, failures) = run(n, in_flight, send).await;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    let ms = |d: Option<&Duration>| d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN);
    println!(
        "{name} client: {n} notifications in {:.2} s = {:.0}/s, {failures} not delivered, p50 {:.1} ms, p99 {:.1} ms ({in_flight} in flight, {connections} connections)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
    );
}

async fn run<F, Fut>(n: usize, in_flight: usize, send: F) -> (Vec<Duration>, usize)
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = PushOutcome> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight.min(n) {
        let next = next.clone();
        let send = send.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let started = Instant::now();
                match send(i).await {
                    PushOutcome::Delivered => latencies.push(started.elapsed()),
                    other => {
                        failures += 1;
                        if failures == 1 {
                            eprintln!("not delivered: {other:?}");
                        }
                    }
                }
            }
            (latencies, failures)
        });
    }
    let mut all = Vec::with_capacity(n);
    let mut failures = 0;
    while let Some(result) = tasks.join_next().await {
        let (latencies, failed) = result.expect("send task");
        all.extend(latencies);
        failures += failed;
    }
    (all, failures)
}
