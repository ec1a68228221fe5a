//! The `ledgerlink` binary as a user runs it.

mod common;

use std::path::Path;

use common::{ServeProcess, binary, run_cli};
use serde_json::Value;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let top = run_cli(&["--help"], &[], dir.path());
    assert!(top.status.success());
    for command in ["serve", "tenant", "migrate", "config", "openapi"] {
        assert!(stdout(&top).contains(command), "--help lists {command}");
    }
    for args in [
        &["serve", "--help"][..],
        &["tenant", "--help"],
        &["tenant", "create", "--help"],
        &["migrate", "--help"],
    ] {
        let output = run_cli(args, &[], dir.path());
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains("Usage: ledgerlink"), "{args:?}");
    }
    assert!(stdout(&run_cli(&["serve", "--help"], &[], dir.path())).contains("--sandbox"));
    let bad = run_cli(&["serve", "--lisen", "x"], &[], dir.path());
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--lisen"));
}

#[test]
fn the_documented_example_config_is_what_the_binary_prints() {
    let dir = tempfile::tempdir().unwrap();
    let printed = stdout(&run_cli(&["config", "example"], &[], dir.path()));
    let committed = std::fs::read_to_string(repo_root().join("ledgerlink.example.toml")).unwrap();
    assert_eq!(committed, printed, "regenerate with `ledgerlink config example > ledgerlink.example.toml`");
}

#[test]
fn wrong_configuration_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ledgerlink.toml");
    std::fs::write(&config, "provider_timeout = \"soon\"\n").unwrap();
    let output = run_cli(&["serve", "--config", config.to_str().unwrap()], &[], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("`provider_timeout`") && err.contains("\"120s\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let output = run_cli(&["migrate"], &[("LEDGERLINK_LISTEN", "localhost")], dir.path());
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(err.contains("`listen`") && err.contains("LEDGERLINK_LISTEN"), "{err}");

    let output = run_cli(&["serve", "--config", "/nonexistent.toml"], &[], dir.path());
    assert!(!output.status.success());
    assert!(stderr(&output).contains("/nonexistent.toml"));
}

#[test]
fn an_unusable_data_directory_fails_at_start_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    for data_dir in [file.clone(), file.join("below"), "/proc/self/ledgerlink".into()] {
        let output = run_cli(&["migrate", "--data-dir", data_dir.to_str().unwrap()], &[], dir.path());
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(err.contains("data_dir") && err.contains(data_dir.to_str().unwrap()), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x", "the file in the way is untouched");
}

#[test]
fn a_postgres_that_is_down_at_start_is_retried_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let url = format!("postgres://hub:pw-s3cret@127.0.0.1:{port}/ledgerlink");
    let env = [("LEDGERLINK_DATABASE_URL", url.as_str()), ("LEDGERLINK_DATABASE_CONNECT_TIMEOUT", "1s")];
    let output = run_cli(&["migrate"], &env, dir.path());
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("after trying for"), "{err}");
    assert!(err.contains("not reachable yet; retrying"), "it retried: {err}");
    assert!(!err.contains("pw-s3cret") && !err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn a_tenant_created_on_the_command_line_can_use_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = run_cli(
        &["tenant", "create", "Acme Practice Tools", "--json", "--data-dir", data.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let created: Value = serde_json::from_str(stdout(&output).trim()).expect("stdout is only the JSON");
    let key = created["api_key"].as_str().unwrap();
    assert!(created["id"].as_str().unwrap().starts_with("ten_"));
    assert!(key.starts_with("llk_"));

    let text =
        run_cli(&["tenant", "create", "Second", "--data-dir", data.to_str().unwrap()], &[], dir.path());
    assert!(stdout(&text).contains("shown once"));
    let blank = run_cli(&["tenant", "create", "  ", "--data-dir", data.to_str().unwrap()], &[], dir.path());
    assert!(!blank.status.success() && stderr(&blank).contains("NAME"), "{}", stderr(&blank));

    let mut hub = ServeProcess::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path()).await;
    let response = reqwest::Client::new()
        .get(format!("{}/v1/organisations", hub.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(hub.terminate().success());
}

#[tokio::test]
async fn a_second_serve_on_the_same_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = ServeProcess::start(&[], &[], dir.path()).await;
    let port = common::free_port().to_string();
    let second = run_cli(&["serve", "--listen", &format!("127.0.0.1:{port}")], &[], dir.path());
    assert_eq!(second.status.code(), Some(1));
    let err = stderr(&second);
    assert!(
        err.contains("another `ledgerlink serve` is already using") && err.contains("PostgreSQL"),
        "{err}"
    );
    assert!(first.terminate().success());
    // Once the first has stopped, the lock is free again.
    let mut again = ServeProcess::start(&[], &[], dir.path()).await;
    assert!(again.terminate().success());
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = ServeProcess::start(&[], &[], dir.path()).await;
    let status = hub.terminate();
    assert!(status.success(), "exit status {status}: {}", hub.stderr());
    let log = hub.stderr();
    assert!(log.contains("SIGTERM") && log.contains("ledgerlink stopped"), "{log}");
}

#[tokio::test]
async fn no_secret_reaches_the_log_or_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LEDGERLINK_LOG_LEVEL", "trace"),
        ("LEDGERLINK_LOG_FORMAT", "json"),
        ("LEDGERLINK_PROVIDERS_XERO_CLIENT_SECRET", "xero-client-s3cret"),
    ];
    let mut hub = ServeProcess::start(&["--sandbox"], &env, dir.path()).await;
    let key = hub
        .stdout()
        .lines()
        .find_map(|l| l.trim().strip_prefix("API key: ").map(str::to_owned))
        .expect("the sandbox prints its API key");
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/v1/organisations", hub.base))
        .bearer_auth(&key)
        .json(&serde_json::json!({"name": "Harbour Bakery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let denied = client
        .get(format!("{}/v1/organisations", hub.base))
        .bearer_auth("llk_guessed-key")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    assert!(hub.terminate().success());

    let log = hub.stderr();
    assert!(log.lines().count() > 3, "trace logging produced lines: {log}");
    for line in log.lines() {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }
    assert!(log.contains("request_id"), "request lines carry the request id");
    for secret in [key.as_str(), "llk_guessed-key", "xero-client-s3cret", "Bearer"] {
        assert!(!log.contains(secret), "the log contains {secret}");
    }
    for entry in walk(&dir.path().join("ledgerlink-data")) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&key), "{} holds the API key in clear", entry.display());
    }
    // The sandbox key is stored, encrypted, and printed again on the next start.
    let mut again = ServeProcess::start(&["--sandbox"], &[], dir.path()).await;
    assert!(again.stdout().contains(&key));
    assert!(again.terminate().success());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[tokio::test]
async fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    // Every marked block, in order, run as one script (later blocks continue earlier ones).
    let blocks: Vec<&str> = readme
        .split("<!-- walkthrough:start -->")
        .skip(1)
        .map(|rest| rest.split("<!-- walkthrough:end -->").next().expect("each block is closed"))
        .map(|block| {
            block.trim().strip_prefix("```sh").and_then(|s| s.strip_suffix("```")).expect("one sh block")
        })
        .collect();
    assert_eq!(blocks.len(), 5, "the API, connection, diagnosis, web connector and Acumatica walkthroughs");
    let script = blocks.join("\n");

    let dir = tempfile::tempdir().unwrap();
    let mut hub = ServeProcess::start(&["--sandbox"], &[], dir.path()).await;
    let key = hub
        .stdout()
        .lines()
        .find_map(|l| l.trim().strip_prefix("export LEDGERLINK_API_KEY=").map(str::to_owned))
        .unwrap();
    // `ledgerlink` as the README calls it: the binary under test.
    let path =
        format!("{}:{}", binary().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", path)
        .env("HUB", &hub.base)
        .env("LEDGERLINK_API_KEY", &key)
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(output.status.success(), "walkthrough failed:\n{out}\n{}", stderr(&output));
    assert!(out.contains("created org_"), "{out}");
    assert!(
        out.contains("\"name\":\"Harbour Bakery\"") && out.contains("\"external_id\":\"cld-1234\""),
        "{out}"
    );
    assert!(out.contains("ana@harbourbakery.example"), "{out}");
    assert!(out.contains("\"code\":\"validation_failed\"") && out.contains("`name`"), "{out}");
    assert!(out.contains(r#"{"status":"connected","external_account":{"id":"#), "{out}");
    assert!(out.contains(r#""headers":{"xero-tenant-id":"#), "{out}");
    assert!(out.contains(r#"["connection.created","connection.connected"]"#), "{out}");
    assert!(out.contains(r#"{"ok":true}"#), "{out}");
    assert!(out.contains(r#"{"http_status":403,"category":"insufficient_permission","action":"#), "{out}");
    assert!(out.contains("Standard or Adviser"), "{out}");
    assert!(out.contains("\"Demo Company"), "the proxied Organisation: {out}");
    assert!(out.contains(r#""minute""#), "{out}");
    assert!(out.contains(r#"["connection_id","endpoint_url"]"#), "{out}");
    assert!(out.contains("one cycle: 4 exchanges"), "{out}");
    assert!(out.contains(r#"{"status":"done","pages":4,"customers":35}"#), "{out}");
    assert!(out.contains(r#"{"category":"credentials_rejected"}"#), "{out}");
    assert!(out.contains(r#"{"status":"disconnected","reason":"credentials_rejected"}"#), "{out}");
    assert!(out.contains(r#"{"status":"connected","reason":null}"#), "{out}");
    assert!(hub.terminate().success());
}

#[test]
fn migrate_reports_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(&["migrate", "--data-dir", "data"], &[], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("schema version 6"), "{}", stdout(&output));
    assert!(dir.path().join("data/ledgerlink.db").exists());
}

#[test]
fn the_refresh_benchmark_runs_and_prints_its_figures_beside_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(
        &["bench", "refresh", "--connections", "300", "--concurrency", "16", "--idle-connections", "3000"],
        &[],
        dir.path(),
    );
    let out = stdout(&output);
    assert!(output.status.success(), "{out}\n{}", stderr(&output));
    for line in [
        "simulator raw capacity (plain client):",
        "hub (ledgerlink serve, from start):",
        "ratio hub / raw capacity:",
        "concurrent refreshes of one grant:             1 (must be 1); invalid_grant answers: 0",
        "idle hub holding 3000 stored connections: RSS",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let bad = run_cli(&["bench", "refresh", "--connections", "0"], &[], dir.path());
    assert!(!bad.status.success() && stderr(&bad).contains("at least 1"));
}

#[test]
fn the_webconnector_benchmark_runs_and_prints_its_figures_beside_the_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(
        &["bench", "webconnector", "--jobs", "40", "--concurrency", "4", "--parse-seconds", "0.2"],
        &[],
        dir.path(),
    );
    let out = stdout(&output);
    assert!(output.status.success(), "{out}\n{}", stderr(&output));
    for line in [
        "CustomerQueryRs with 100 CustomerRet",
        "baseline (same JSON, no storage):",
        "hub (GET + POST, durable):",
        "latency: GET p50",
        "ratio hub / baseline:",
        "jobs done holding their response:",
        " 40 of 40 (must be all)",
        "bare quick-xml event loop:",
        "parse + read every record:",
        "ratio parser / bare quick-xml:",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let bad = run_cli(&["bench", "webconnector", "--jobs", "0"], &[], dir.path());
    assert!(!bad.status.success() && stderr(&bad).contains("at least 1"));
}
