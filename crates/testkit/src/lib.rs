//! Test support shared by the crates' integration tests.
//!
//! [`postgres_database`] gives each test its own empty PostgreSQL database on a throwaway
//! cluster. The cluster is started once per test process: `initdb` runs once per machine into a
//! cached template (initdb is the slow part), and each process copies the template, starts
//! `postgres` on a free loopback port, and leaves a watchdog that stops the server and deletes
//! its files when the process exits — also when it panics or is killed.
//!
//! Set `LEDGERLINK_TEST_DATABASE_URL` to an existing server's admin URL to use it instead.
//! Binaries come from `LEDGERLINK_PG_BIN`, `/usr/lib/postgresql/*/bin`, or `PATH`; `scripts/test`
//! installs the `postgresql` package when none is found. PostgreSQL refuses to run as root, so
//! under root the server runs as the `postgres` user.
//!
//! [`smtp::SmtpServer`] is a tiny SMTP server on a free loopback port that keeps what it receives,
//! for testing code that sends email.

pub mod smtp;

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rand::Rng;
use sqlx::Connection;

struct Cluster {
    admin_url: String,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Creates an empty database for one test and returns its URL.
pub async fn postgres_database() -> String {
    let cluster = CLUSTER.get_or_init(start_cluster);
    let name = format!("t_{:016x}", rand::thread_rng().r#gen::<u64>());
    let mut admin = sqlx::PgConnection::connect(&cluster.admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {}: {e}", cluster.admin_url));
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("CREATE DATABASE on the test cluster");
    let base = cluster.admin_url.rsplit_once('/').map_or(cluster.admin_url.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

fn start_cluster() -> Cluster {
    if let Ok(url) = std::env::var("LEDGERLINK_TEST_DATABASE_URL") {
        return Cluster { admin_url: url };
    }
    let bin = find_pg_bin();
    let run_as_postgres = is_root();
    let template = template_dir(&bin, run_as_postgres);

    let data = tempfile::Builder::new().prefix("ledgerlink-pg-").tempdir().expect("temp dir").keep();
    copy_dir(&template, &data);
    if run_as_postgres {
        chown_tree(&data, "postgres");
    }
    let port = free_port();
    let log = data.join("server.log");
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {dir} -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB",
        dir = data.display()
    );
    let start = format!(
        "{pg_ctl} -D {dir} -l {log} -o '{options}' -w -t 60 start >/dev/null",
        pg_ctl = bin.join("pg_ctl").display(),
        dir = data.display(),
        log = log.display(),
    );
    let status = shell(&start, run_as_postgres).status().expect("run pg_ctl");
    if !status.success() {
        let log_text = fs::read_to_string(&log).unwrap_or_default();
        panic!("the throwaway PostgreSQL did not start ({status}); its log says:\n{log_text}");
    }
    // The watchdog outlives this process by design: it waits for it to exit, then cleans up.
    let watchdog = format!(
        "while [ -d /proc/{pid} ]; do sleep 1; done; {pg_ctl} -D {dir} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        pg_ctl = bin.join("pg_ctl").display(),
        dir = data.display(),
    );
    // init reaps it once this process is gone; waiting for it here would wait forever.
    #[allow(clippy::zombie_processes)]
    let _watchdog = shell(&watchdog, run_as_postgres)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the PostgreSQL watchdog");
    Cluster { admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres") }
}

/// `initdb` once per machine and PostgreSQL version; concurrent test processes wait on a lock.
fn template_dir(bin: &Path, run_as_postgres: bool) -> PathBuf {
    let version =
        bin.parent().and_then(|p| p.file_name()).map_or("pg".into(), |v| v.to_string_lossy().into_owned());
    let root = std::env::temp_dir().join(format!("ledgerlink-pg-template-{version}"));
    fs::create_dir_all(&root).expect("create the template directory");
    let lock = File::create(root.join("lock")).expect("create the template lock");
    lock.lock().expect("lock the template directory");
    let template = root.join("data");
    if !template.join("PG_VERSION").exists() {
        let _ = fs::remove_dir_all(&template);
        fs::create_dir_all(&template).expect("create the template data directory");
        if run_as_postgres {
            chown_tree(&root, "postgres");
        }
        let initdb = format!(
            "{initdb} -D {dir} -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >{dir}/../initdb.log 2>&1",
            initdb = bin.join("initdb").display(),
            dir = template.display(),
        );
        let status = shell(&initdb, run_as_postgres).status().expect("run initdb");
        if !status.success() {
            let log = fs::read_to_string(root.join("initdb.log")).unwrap_or_default();
            let _ = fs::remove_dir_all(&template);
            panic!("initdb failed ({status}):\n{log}");
        }
    }
    template
}

fn find_pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("LEDGERLINK_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Ok(path) = std::env::var("PATH") {
        for dir in path.split(':') {
            let dir = PathBuf::from(dir);
            if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
                return dir;
            }
        }
    }
    panic!(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in LEDGERLINK_PG_BIN, /usr/lib/postgresql/*/bin \
         or PATH. Run ./scripts/test, which installs them, or `apt-get install postgresql`."
    );
}

fn shell(script: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", "sh", "-c", script]);
        command
    } else {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }
}

fn is_root() -> bool {
    // The owner of /proc/self is this process's effective uid: no libc call needed.
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

fn chown_tree(path: &Path, user: &str) {
    let status = Command::new("chown").args(["-R", user]).arg(path).status().expect("run chown");
    assert!(status.success(), "chown -R {user} {} failed", path.display());
}

fn copy_dir(from: &Path, to: &Path) {
    let status =
        Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).status().expect("run cp");
    assert!(status.success(), "copying the PostgreSQL template failed");
    fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod 700 data dir");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
