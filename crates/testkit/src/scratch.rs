//! Throwaway databases for tests and benchmarks: each run creates its own uniquely named
//! database on a Postgres server and drops it afterwards, so runs never share state.
//!
//! The server is `SWITCHBOARD_TEST_POSTGRES` (a URL to an existing database the user may
//! create databases from), by default the local trust-auth server at 127.0.0.1:5432. Without
//! a server, [`Scratch::create`] says why and returns `None`, so suites skip; with `CI=true`
//! a missing server is a failure instead: CI must not pass by skipping.

use std::io::Write;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::{Config, NoTls};

use switchboard_store_postgres::{error_chain as chain, redact};

pub const ENV: &str = "SWITCHBOARD_TEST_POSTGRES";
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists until this value is dropped.
pub struct Scratch {
    /// The URL of the scratch database itself.
    pub url: String,
    admin: String,
    name: String,
}

impl Scratch {
    /// Creates a fresh database, or returns `None` (having said so on stderr, once) when no
    /// server is reachable outside CI. Panics in CI, and on any other failure.
    pub async fn create(purpose: &str) -> Option<Self> {
        let admin = std::env::var(ENV).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let client = match connect(&admin).await {
            Ok(c) => c,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("CI=true but the Postgres suite cannot reach {admin}: {e}")
            }
            Err(e) => {
                skipped(&admin, &e);
                return None;
            }
        };
        let name = unique_name(purpose);
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            panic!("cannot create the scratch database {name}: {}", chain(&e));
        }
        let mut cfg = Config::from_str(&admin).unwrap_or_else(|e| panic!("{ENV}: {e}"));
        cfg.dbname(&name);
        Some(Self {
            url: to_url(&cfg),
            admin,
            name,
        })
    }
}

impl Scratch {
    /// Ends every other connection to this database, as an administrator or a failover would;
    /// how many it ended.
    pub async fn terminate_backends(&self) -> u64 {
        let client = connect(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach {}: {e}", self.admin));
        let row = client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .await
            .unwrap_or_else(|e| panic!("cannot terminate backends: {}", chain(&e)));
        u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)
    }

    /// A setting of the server, as `SHOW` prints it.
    pub async fn setting(&self, name: &str) -> String {
        let client = connect(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach {}: {e}", self.admin));
        let row = client
            .query_one("SELECT current_setting($1)", &[&name])
            .await
            .unwrap_or_else(|e| panic!("cannot read {name}: {}", chain(&e)));
        row.get(0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await, and may run inside a runtime: a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let client = connect(&admin).await?;
                client.batch_execute(&sql).await.map_err(|e| chain(&e))
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop scratch database {}: {e}",
                self.name
            );
        }
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let cfg = Config::from_str(url).map_err(|e| chain(&e))?;
    let (client, conn) = cfg.connect(NoTls).await.map_err(|e| chain(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn unique_name(purpose: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let purpose: String = purpose
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect::<String>()
        .to_ascii_lowercase();
    format!(
        "swb_{purpose}_{}_{nanos:x}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Rebuilds a URL from a parsed config (the admin URL with another database name).
fn to_url(cfg: &Config) -> String {
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().unwrap_or("postgres");
    let password = cfg
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let db = cfg.get_dbname().unwrap_or("postgres");
    format!("postgres://{user}{password}@{host}:{port}/{db}")
}

/// Says once per process, past the test harness's capture, that the suite did not run.
fn skipped(admin: &str, why: &str) {
    static SAID: OnceLock<()> = OnceLock::new();
    SAID.get_or_init(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** Postgres suite SKIPPED: cannot reach {} ({why}). Set {ENV} to a server \
             URL to run it; with CI=true this is a failure. ***\n",
            redact(admin)
        );
    });
}
