//! `vctl`: controls a running platform over the bridge, as `control.connection`.
//!
//! ```text
//! vctl install target/release/examples/remote_agent --vip-identity meter.1 --agent-config meter.json --start
//! vctl install volttron-listener==2.0.0rc3 --vip-identity listener --start   # a Python agent
//! vctl status                       # UUID AGENT IDENTITY TAG PRIORITY STATUS HEALTH
//! vctl stop meter.1 ; vctl start --tag meters '*'
//! vctl config get meter.1 config ; vctl rpc call meter.1 echo '"hi"'
//! vctl subscribe devices/           # until Ctrl-C
//! vctl profile --agent meter.1 --seconds 10 -o meter.folded
//! vctl shutdown --platform
//! ```
//!
//! Every command takes `--json` (machine-readable output) and `-t SECS` (how long to wait
//! for the platform, default 60). Any failure exits non-zero with a one-line reason.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use serde_json::json;
use volttron::auth::keys::{CredentialStore, KeyPair, PlatformKey};
use volttron::bridge::BridgeAddress;
use volttron::home::VolttronHome;
use volttron::home::pid::PidFile;
use volttron::home::python::{PackageSource, PythonEnv, choose_identity};
use volttron::home::select::{By, select_all, select_one};
use volttron::remote::{Connection, Remote};
use volttron::services::auth::IDENTITY as AUTH;
use volttron::services::config_store::IDENTITY as CONFIG_STORE;
use volttron::services::control::{AgentRecord, CONTROL_CONNECTION, IDENTITY as CONTROL};
use volttron::services::health::IDENTITY as HEALTH;
use volttron::{Args as RpcArgs, Value};

/// Control a running VOLTTRON platform.
#[derive(Debug, Parser)]
#[command(name = "vctl", version)]
struct Cli {
    /// The platform home (default: $VOLTTRON_HOME, else ~/.volttron).
    #[arg(long, global = true, value_name = "DIR")]
    volttron_home: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for the platform.
    #[arg(short = 't', long, global = true, default_value_t = 60.0)]
    timeout: f64,
    #[command(subcommand)]
    command: Command,
}

/// Which field agent patterns match (default: identity, UUID prefix, or name).
#[derive(Debug, Clone, ClapArgs)]
struct Selection {
    /// Agents: identities, UUID prefixes, names or globs.
    #[arg(required = true)]
    patterns: Vec<String>,
    #[command(flatten)]
    by: MatchBy,
}

/// What agent patterns are matched against.
#[derive(Debug, Clone, Copy, ClapArgs)]
struct MatchBy {
    /// Match tags.
    #[arg(long)]
    tag: bool,
    /// Match whole names.
    #[arg(long)]
    name: bool,
    /// Match UUID prefixes.
    #[arg(long)]
    uuid: bool,
}

impl MatchBy {
    fn by(self) -> By {
        By {
            tag: self.tag,
            name: self.name,
            uuid: self.uuid,
            ..By::default()
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Alerts of `platform.alerts`: list, acknowledge, silence (see volttron::alerts).
    #[command(subcommand)]
    Alerts(volttron::alerts::cli::AlertsCommand),
    /// The federation over MQTT: the broker link, the backlog, the other platforms.
    #[command(subcommand)]
    Federation(volttron::mqtt::cli::FederationCommand),
    /// Co-simulations of `platform.simulation`: start, list, status, cancel, results.
    #[command(subcommand)]
    Simulation(volttron::simulation::cli::SimulationCommand),
    /// Audit the home's security (see volttron::audit); fails when a finding is at or
    /// above --fail-at.
    Audit {
        /// info, low, medium, high or critical.
        #[arg(long, default_value = "high")]
        fail_at: volttron::audit::Severity,
    },
    /// Install an agent: an executable, a cargo project (built with `cargo build
    /// --release`), or a Python agent (a *.whl file, a Python project directory, or a
    /// requirement such as `volttron-listener==2.0.0rc3`, installed with pip into the
    /// platform's Python environment).
    Install(InstallOptions),
    /// The installed agents.
    List,
    /// Prints the platform's log (the file of `volttron -l FILE`), filtered.
    Log {
        /// Only this agent's records.
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// Keep printing records as they are written (like `tail -F`).
        #[arg(short, long)]
        follow: bool,
        /// Only records at this level or above: trace, debug, info, warn, error.
        #[arg(long, value_name = "LEVEL")]
        level: Option<String>,
    },
    /// A CPU profile of the platform, or of an agent's process (see volttron::profile):
    /// folded stacks, or an SVG flame graph when FILE ends in .svg (feature `flamegraph`).
    Profile {
        /// The agent (a Rust agent process, or a Python agent: py-spy); default: the platform.
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// How long to sample, 1 to 600.
        #[arg(long, value_name = "N")]
        seconds: u64,
        /// Where to write it.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// The installed agents with their process state and health.
    Status {
        /// Also each agent's reservation and its CPU and memory use.
        #[arg(long)]
        resources: bool,
    },
    /// One agent's health.
    Health {
        /// The agent.
        agent: String,
    },
    /// Start agents.
    Start(Selection),
    /// Stop agents.
    Stop(Selection),
    /// Restart agents.
    Restart(Selection),
    /// Uninstall agents (directory, keys, configuration store, authorization entries).
    Remove(Selection),
    /// Start agents with the platform.
    Enable {
        #[command(flatten)]
        selection: Selection,
        /// Priority (lower starts first; default 50).
        #[arg(short, long)]
        priority: Option<u32>,
    },
    /// Do not start agents with the platform.
    Disable(Selection),
    /// Set or remove an agent's tag.
    Tag {
        /// The agent.
        agent: String,
        /// The tag (omit with --remove).
        tag: Option<String>,
        /// Remove the tag.
        #[arg(long)]
        remove: bool,
    },
    /// The configuration store.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Authentication and authorization.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Remote procedure calls.
    #[command(subcommand)]
    Rpc(RpcCommand),
    /// The web service's users (`$VOLTTRON_HOME/web-users.json`; VOLTTRON's `vcfg` web
    /// user step). Works with the platform stopped; a running platform reads the file at
    /// each login.
    #[command(subcommand)]
    Web(WebCommand),
    /// Publish a JSON message.
    Publish {
        /// The topic.
        topic: String,
        /// The message (JSON; text that is not JSON is sent as a string).
        message: String,
    },
    /// Print publications under a prefix until Ctrl-C.
    Subscribe {
        /// The prefix (or an MQTT-style pattern).
        prefix: String,
        /// Also publications from the other platforms of a federation (each printed
        /// with its origin).
        #[arg(long)]
        all_platforms: bool,
    },
    /// The connected peers.
    Peerlist,
    /// Stop every agent; with --platform, the platform too.
    Shutdown {
        /// Stop the platform as well.
        #[arg(long)]
        platform: bool,
    },
}

#[derive(Debug, Subcommand)]
enum WebCommand {
    /// Web users.
    #[command(subcommand)]
    User(WebUserCommand),
}

#[derive(Debug, Subcommand)]
enum WebUserCommand {
    /// Add a user (the password is asked for twice, or read from stdin).
    Add {
        /// The user name.
        name: String,
        /// Its groups, i.e. capabilities: `vui` opens the REST API, `admin` adds agent
        /// control (comma-separated; default `vui`).
        #[arg(long, value_delimiter = ',', default_value = "vui")]
        groups: Vec<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Replace an existing user.
        #[arg(long)]
        overwrite: bool,
    },
    /// Remove a user.
    Remove {
        /// The user name.
        name: String,
    },
    /// The users and their groups.
    List,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Store a configuration from a file.
    Store {
        /// The agent.
        identity: String,
        /// The configuration's name.
        name: String,
        /// The file (default: standard input).
        file: Option<PathBuf>,
        /// The type: json (default), csv or raw. VOLTTRON's `--json` (the default type;
        /// also the global output flag, which `store` has no output for), `--csv` and
        /// `--raw` say the same.
        #[arg(long = "type", default_value = "json", value_parser = ["json", "csv", "raw"])]
        config_type: String,
        /// Store the file as CSV (`--type csv`).
        #[arg(long, conflicts_with_all = ["raw"])]
        csv: bool,
        /// Store the file as raw text (`--type raw`).
        #[arg(long)]
        raw: bool,
    },
    /// Print a configuration.
    Get {
        /// The agent.
        identity: String,
        /// The configuration's name.
        name: String,
        /// Print the stored text instead of the parsed value.
        #[arg(long)]
        raw: bool,
    },
    /// List an agent's configurations (or, without an agent, the stores).
    List {
        /// The agent.
        identity: Option<String>,
    },
    /// Delete a configuration, or with --all the whole store.
    Delete {
        /// The agent.
        identity: String,
        /// The configuration's name.
        name: Option<String>,
        /// Delete every configuration of the agent.
        #[arg(long)]
        all: bool,
    },
    /// Edit a configuration in $EDITOR.
    Edit {
        /// The agent.
        identity: String,
        /// The configuration's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Print a new key pair (JSON).
    Keypair,
    /// Print the platform's public key.
    #[command(alias = "servercred")]
    Serverkey,
    /// Print installed agents' public keys (all, or the selected ones).
    #[command(alias = "agentcred")]
    Publickey {
        /// Agents: identities, UUID prefixes, names or globs (default: every agent).
        patterns: Vec<String>,
        #[command(flatten)]
        by: MatchBy,
    },
    /// Approved entries.
    List,
    /// Approve a key for an identity. Without a key, a key pair is made for the identity
    /// (kept in `credentials_store/<identity>.json`, or the one there reused), as
    /// VOLTTRON 11's `vctl auth add IDENTITY` does.
    Add {
        /// The identity.
        identity: String,
        /// Its public key.
        public_key: Option<String>,
        /// Its public key (VOLTTRON 11's spelling).
        #[arg(long = "publickey", conflicts_with = "public_key")]
        publickey: Option<String>,
        /// A comment.
        #[arg(long)]
        comments: Option<String>,
    },
    /// Remove an identity's entry.
    Remove {
        /// The identity.
        identity: String,
    },
    /// Keys waiting for approval.
    Pending,
    /// Approve a pending identity or key.
    Approve {
        /// The identity or key.
        identity_or_key: String,
    },
    /// Deny a pending identity or key.
    Deny {
        /// The identity or key.
        identity_or_key: String,
    },
    /// Roles and their capabilities.
    Roles,
    /// Groups and their roles.
    Groups,
    /// Protected topics.
    ProtectedTopics,
    /// Set a role's capabilities.
    SetRole {
        /// The role.
        name: String,
        /// Its capabilities.
        capabilities: Vec<String>,
    },
    /// Protect a topic prefix for publish or subscribe.
    Protect {
        /// `publish` or `subscribe`.
        #[arg(value_parser = ["publish", "subscribe"])]
        kind: String,
        /// The prefix.
        prefix: String,
        /// The capabilities required.
        #[arg(required = true)]
        capabilities: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RpcCommand {
    /// Call a method: arguments are JSON (text that is not JSON is a string).
    Call {
        /// The peer.
        peer: String,
        /// The method.
        method: String,
        /// Arguments.
        args: Vec<String>,
        /// The peer is on this platform of the federation (VOLTTRON's
        /// `external_platform`).
        #[arg(long, value_name = "INSTANCE")]
        platform: Option<String>,
    },
    /// The methods a peer exports (every peer's without one).
    List {
        /// The peer.
        peer: Option<String>,
    },
}

type Outcome = Result<(), String>;

struct Ctl {
    home: VolttronHome,
    json: bool,
    timeout: Duration,
}

impl Ctl {
    /// Connects as `control.connection` (a second `vctl` at once gets a suffixed identity).
    async fn connect(&self) -> Result<Connection, String> {
        let pid_file = self.home.pid_file();
        if !matches!(PidFile::running(&pid_file), Ok(Some(_))) && !self.home.socket_path().exists() {
            return Err(format!(
                "no platform is running on {}",
                self.home.path().display()
            ));
        }
        // A platform that is starting binds its socket after it made vctl's key: read the
        // key once the socket is there, or a vctl run right after `volttron` connects
        // without one and is refused.
        let socket = self.home.socket_path();
        let deadline = tokio::time::Instant::now() + self.timeout;
        while !socket.exists() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let address = BridgeAddress::Unix(socket);
        let credentials = CredentialStore::new(self.home.path());
        let keys = credentials.load(CONTROL_CONNECTION).map_err(|e| e.to_string())?;
        let serverkey = PlatformKey::public_key(self.home.path()).map_err(|e| e.to_string())?;
        for identity in [
            CONTROL_CONNECTION.to_owned(),
            format!("{CONTROL_CONNECTION}.{}", std::process::id()),
        ] {
            let mut remote = Remote::new(address.clone())
                .identity(&identity)
                .connect_timeout(self.timeout)
                .rpc_timeout(self.timeout);
            if let Some(k) = &keys {
                remote = remote.credentials(k.clone());
            }
            if let Some(k) = serverkey {
                remote = remote.serverkey(k);
            }
            match remote.connect().await {
                Ok(c) => return Ok(c),
                Err(volttron::remote::RemoteError::Refused {
                    code: volttron::bridge::frame::ErrorCode::DuplicateIdentity,
                    ..
                }) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("two other vctl commands are connected; try again".into())
    }

    fn print(&self, value: &serde_json::Value, table: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            let text = table();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }
}

async fn call(
    conn: &Connection,
    peer: &str,
    method: &str,
    args: impl volttron::IntoArgs,
) -> Result<Value, String> {
    conn.call(peer, method, args)
        .await
        .map_err(|e| format!("{peer}.{method}: {e}"))
}

async fn agents(conn: &Connection, method: &str) -> Result<Vec<AgentRecord>, String> {
    let v = call(conn, CONTROL, method, ()).await?;
    volttron::from_value(v).map_err(|e| e.to_string())
}

fn by(s: &Selection) -> By {
    s.by.by()
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

/// A command-line value: JSON if it parses, else a string.
fn json_arg(text: &str) -> Value {
    serde_json::from_str::<serde_json::Value>(text)
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(text))
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Builds a cargo project; returns (binary, package name-version, default identity).
fn build_cargo_project(dir: &Path) -> Result<(PathBuf, String, Option<String>), String> {
    let status = std::process::Command::new("cargo")
        .args(["build", "--release"])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build --release failed in {} ({status})",
            dir.display()
        ));
    }
    let out = std::process::Command::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let manifest = absolute(&dir.join("Cargo.toml"))?;
    let package = meta["packages"]
        .as_array()
        .and_then(|p| {
            p.iter().find(|p| {
                p["manifest_path"].as_str().map(PathBuf::from).as_deref() == Some(manifest.as_path())
            })
        })
        .ok_or("cargo metadata names no package for this directory")?;
    let name = package["name"].as_str().unwrap_or_default().to_owned();
    let version = package["version"].as_str().unwrap_or_default().to_owned();
    let identity = package["metadata"]["volttron"]["identity"]
        .as_str()
        .map(str::to_owned);
    let target = meta["target_directory"]
        .as_str()
        .ok_or("cargo metadata has no target directory")?;
    let binary = Path::new(target).join("release").join(&name);
    if !binary.exists() {
        return Err(format!("the build made no binary {}", binary.display()));
    }
    Ok((binary, format!("{name}-{version}"), identity))
}

/// What `vctl install` was told.
///
/// What the argument is: an existing `*.whl` file, a Python wheel; an existing directory
/// with `Cargo.toml`, a cargo project; one with `pyproject.toml`, `setup.py` or
/// `setup.cfg` (and no `Cargo.toml`), a Python project; another existing file, an
/// executable; anything else that looks like a requirement (`name`, `name==version`), a
/// package from the index.
#[derive(Debug, ClapArgs)]
struct InstallOptions {
    /// The executable, the cargo or Python project directory, the wheel, or the Python
    /// requirement (`volttron-listener==2.0.0rc3`).
    path: PathBuf,
    /// The agent's identity.
    #[arg(long)]
    vip_identity: Option<String>,
    /// A tag.
    #[arg(long)]
    tag: Option<String>,
    /// The agent's initial configuration (JSON), stored as its `config`.
    #[arg(long, value_name = "FILE")]
    agent_config: Option<PathBuf>,
    /// Replace an agent installed under the same identity (keeps its data/ and keys).
    #[arg(long)]
    force: bool,
    /// Autostart priority (lower starts first).
    #[arg(long)]
    priority: Option<u32>,
    /// Start it with the platform.
    #[arg(long)]
    enable: bool,
    /// Start it now.
    #[arg(long)]
    start: bool,
    /// Its resource contract (default: `exereqs.json` or `execreqs.json` in a project
    /// directory).
    #[arg(long, value_name = "FILE")]
    exereqs: Option<PathBuf>,
    /// Python agents: let pip choose pre-releases (a pinned `==` version is honoured
    /// without it).
    #[arg(long = "pre", visible_alias = "pre-release", alias = "allow-prereleases")]
    pre: bool,
}

async fn install(ctl: &Ctl, options: InstallOptions) -> Outcome {
    let InstallOptions {
        path,
        vip_identity,
        tag,
        agent_config,
        force,
        priority,
        enable,
        start,
        exereqs,
        pre,
    } = options;
    let path = path.as_path();
    if let Some(source) = PackageSource::classify(&path.to_string_lossy()) {
        let options = InstallOptions {
            path: path.to_owned(),
            vip_identity,
            tag,
            agent_config,
            force,
            priority,
            enable,
            start,
            exereqs,
            pre,
        };
        return install_python(ctl, source, options).await;
    }
    if !path.exists() {
        return Err(format!(
            "{}: no such file or directory (nor a Python requirement such as name==version)",
            path.display()
        ));
    }
    if path.is_dir() && !path.join("Cargo.toml").is_file() {
        return Err(format!(
            "{} is neither a cargo project (Cargo.toml) nor a Python project (pyproject.toml, setup.py)",
            path.display()
        ));
    }
    let exereqs = exereqs.or_else(|| {
        path.is_dir().then(|| {
            ["exereqs.json", "execreqs.json"]
                .iter()
                .map(|f| path.join(f))
                .find(|p| p.exists())
        })?
    });
    let (binary, name, default_identity) = if path.is_dir() {
        build_cargo_project(path)?
    } else {
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{} is not a file name", path.display()))?
            .to_owned();
        (absolute(path)?, stem, None)
    };
    let conn = ctl.connect().await?;
    let installed = agents(&conn, "list_agents").await?;
    let identity = match vip_identity.or(default_identity) {
        Some(id) => id,
        None => (1..)
            .map(|n| format!("{name}_{n}"))
            .find(|id| !installed.iter().any(|a| &a.identity == id))
            .expect("an unused suffix"),
    };
    let config = agent_config.as_deref().map(absolute).transpose()?;
    let config = config.map(|p| p.display().to_string());
    let exereqs = exereqs.as_deref().map(absolute).transpose()?;
    let exereqs = exereqs.map(|p| p.display().to_string());
    let args = RpcArgs::new()
        .kwarg("source", binary.display().to_string())
        .kwarg("identity", identity.as_str())
        .kwarg("name", name.as_str())
        .kwarg("tag", tag)
        .kwarg("config", config)
        .kwarg("priority", priority)
        .kwarg("enable", enable)
        .kwarg("force", force)
        .kwarg("exereqs", exereqs);
    finish_install(ctl, conn, args, &identity, start).await
}

/// Sends `install_agent`, starts the agent if asked, prints the outcome.
async fn finish_install(ctl: &Ctl, conn: Connection, args: RpcArgs, identity: &str, start: bool) -> Outcome {
    let result = async {
        let installed = call(&conn, CONTROL, "install_agent", args).await?;
        let mut pid = Value::Null;
        if start {
            pid = call(&conn, CONTROL, "start_agent", (identity,)).await?;
        }
        ctl.print(&json!({"identity": identity, "installed": installed.to_string(), "pid": serde_json::Value::from(pid.clone())}), || {
            match pid.as_u64() {
                Some(p) => format!("Installed {identity} and started it (pid {p})"),
                None => format!("Installed {identity}"),
            }
        });
        Ok(())
    }
    .await;
    conn.close().await;
    result
}

/// Installs a Python agent: pip installs the package into the platform's Python
/// environment (here, not in the platform: a download may take longer than an RPC may),
/// then the control service makes its directory and credentials. A failure before the
/// `install_agent` call leaves nothing of the agent behind.
async fn install_python(ctl: &Ctl, source: PackageSource, options: InstallOptions) -> Outcome {
    let conn = ctl.connect().await?;
    let home = ctl.home.clone();
    let pre = options.pre;
    if !ctl.json && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("Installing {} with pip ...", source.pip_argument());
    }
    let package = tokio::task::spawn_blocking(move || {
        let env = PythonEnv::resolve(&home)?;
        env.install_package(&source, pre)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    let package = match package {
        Ok(p) => p,
        Err(e) => {
            conn.close().await;
            return Err(e);
        }
    };
    let installed = agents(&conn, "list_agents").await?;
    let identity = choose_identity(options.vip_identity.as_deref(), &package.distribution, |id| {
        installed.iter().any(|a| a.identity == id)
    });
    let config = options.agent_config.as_deref().map(absolute).transpose()?;
    let exereqs = options.exereqs.as_deref().map(absolute).transpose()?;
    let python = volttron::to_value(&package.program).map_err(|e| e.to_string())?;
    let args = RpcArgs::new()
        .kwarg("source", "")
        .kwarg("identity", identity.as_str())
        .kwarg("name", package.distribution.agent_name())
        .kwarg("tag", options.tag)
        .kwarg("config", config.map(|p| p.display().to_string()))
        .kwarg("priority", options.priority)
        .kwarg("enable", options.enable)
        .kwarg("force", options.force)
        .kwarg("exereqs", exereqs.map(|p| p.display().to_string()))
        .kwarg("python", python);
    finish_install(ctl, conn, args, &identity, options.start).await
}

async fn status(ctl: &Ctl, conn: &Connection, resources: bool) -> Outcome {
    let rows = agents(conn, "status_agents").await?;
    let health = call(conn, HEALTH, "get_platform_health", ())
        .await
        .unwrap_or(Value::Null);
    // The control service's verdict first (BAD for an agent it gave up on); else the
    // heartbeat of a connected agent (a stopped agent's last heartbeat is stale).
    let health_of = |id: &str| -> String {
        if let Some(h) = rows
            .iter()
            .find(|r| r.identity == id)
            .and_then(|r| r.health.clone())
        {
            return h;
        }
        health
            .get(id)
            .filter(|h| h.get("connected").and_then(|c| c.as_bool()) == Some(true))
            .and_then(|h| h.get("status"))
            .and_then(|s| s.as_str())
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let uuid_len = volttron::home::select::unique_uuid_prefix_len(&rows).max(4);
    let json_rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["health"] = json!(health_of(&r.identity));
            v
        })
        .collect();
    let mut header = vec!["UUID", "AGENT", "IDENTITY", "TAG", "PRIORITY", "STATUS", "HEALTH"];
    if resources {
        header.extend(["CPU", "RSS", "FROM", "RESERVED"]);
    }
    ctl.print(&serde_json::Value::Array(json_rows), || {
        table(
            &header,
            rows.iter()
                .map(|r| {
                    let status = r.status_text();
                    let mut row = vec![
                        r.uuid.chars().take(uuid_len).collect(),
                        r.name.clone(),
                        r.identity.clone(),
                        r.tag.clone().unwrap_or_default(),
                        r.priority.map(|p| p.to_string()).unwrap_or_default(),
                        status,
                        health_of(&r.identity),
                    ];
                    if resources {
                        row.extend(r.resource_cells());
                    }
                    row
                })
                .collect(),
        )
    });
    Ok(())
}

async fn for_selected(ctl: &Ctl, conn: &Connection, s: &Selection, method: &str, verb: &str) -> Outcome {
    let rows = agents(conn, "list_agents").await?;
    let chosen = select_all(&rows, &s.patterns, by(s)).map_err(|e| e.to_string())?;
    let mut done = Vec::new();
    for agent in chosen {
        let result = call(conn, CONTROL, method, (agent.identity.as_str(),)).await?;
        done.push(json!({"identity": agent.identity, "result": serde_json::Value::from(result)}));
        if !ctl.json {
            println!("{verb} {}", agent.identity);
        }
    }
    if ctl.json {
        println!("{}", serde_json::Value::Array(done));
    }
    Ok(())
}

async fn run(cli: Cli) -> Outcome {
    let home = VolttronHome::resolve(cli.volttron_home.clone()).map_err(|e| e.to_string())?;
    if !(cli.timeout > 0.0 && cli.timeout.is_finite()) {
        return Err(format!(
            "--timeout must be a positive number of seconds, not {}",
            cli.timeout
        ));
    }
    let ctl = Ctl {
        home,
        json: cli.json,
        timeout: Duration::from_secs_f64(cli.timeout),
    };
    match cli.command {
        Command::Auth(AuthCommand::Keypair) => {
            let keys = KeyPair::generate().map_err(|e| e.to_string())?;
            println!("{}", keys.to_json());
            return Ok(());
        }
        Command::Auth(AuthCommand::Serverkey) => {
            let key = PlatformKey::public_key(ctl.home.path())
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{} has no platform key yet", ctl.home.path().display()))?;
            ctl.print(&json!({"serverkey": key.to_string()}), || key.to_string());
            return Ok(());
        }
        Command::Install(options) => return install(&ctl, options).await,
        Command::Web(WebCommand::User(c)) => return web_user(&ctl, c),
        Command::Audit { fail_at } => {
            let answer = match ctl.connect().await {
                Ok(conn) => {
                    let answer = call(&conn, volttron::audit::IDENTITY, "run", ()).await.ok();
                    conn.close().await;
                    answer
                }
                Err(_) => None,
            };
            let report = volttron::audit::answer_or_run(&ctl.home, answer);
            ctl.print(&serde_json::to_value(&report).map_err(|e| e.to_string())?, || {
                report.to_table()
            });
            if let Err(e) = report.fail_at(fail_at) {
                // Findings are not an error of vctl's: their own exit code, so that a
                // fleet's cron tells "found something" from "could not audit" (1).
                eprintln!("vctl: {e}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
                std::process::exit(volttron::audit::FINDINGS_EXIT_CODE);
            }
            return Ok(());
        }
        Command::Log { agent, follow, level } => {
            return volttron::logs::print_log(&ctl.home, agent, level.as_deref(), follow)
                .map_err(|e| e.to_string());
        }
        Command::Profile {
            agent,
            seconds,
            output,
        } => {
            let request = volttron::profile::cli::ProfileRequest::new(seconds, agent, output)
                .map_err(|e| e.to_string())?;
            let conn = ctl.connect().await?;
            let profile = request.run(&conn).await;
            conn.close().await;
            let (v, text) = request.summary(&profile.map_err(|e| e.to_string())?);
            ctl.print(&v, || text);
            return Ok(());
        }
        _ => {}
    }
    let conn = ctl.connect().await?;
    let result = command(&ctl, &conn, cli.command).await;
    conn.close().await;
    result
}

/// `vctl web user ...`: edits the users file directly.
fn web_user(ctl: &Ctl, c: WebUserCommand) -> Outcome {
    use volttron::web::WebUsers;
    let path = WebUsers::path_in(ctl.home.path());
    let mut users = WebUsers::load(&path).map_err(|e| e.to_string())?;
    match c {
        WebUserCommand::Add {
            name,
            groups,
            password_stdin,
            overwrite,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                let first =
                    rpassword::prompt_password(format!("Password for web user {name}: ")).map_err(|e| {
                        format!("cannot read the password (no terminal? use --password-stdin): {e}")
                    })?;
                let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
                if first != again {
                    return Err("the passwords differ".into());
                }
                first
            };
            let groups: Vec<String> = groups
                .into_iter()
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect();
            users
                .add(&name, &password, &groups, overwrite)
                .map_err(|e| e.to_string())?;
            ctl.print(&json!({"added": name, "groups": groups}), || {
                format!("added web user {name} ({})", groups.join(", "))
            });
        }
        WebUserCommand::Remove { name } => {
            users.remove(&name).map_err(|e| e.to_string())?;
            ctl.print(&json!({"removed": name}), || format!("removed web user {name}"));
        }
        WebUserCommand::List => {
            let list = users.list();
            let v = serde_json::Value::Array(
                list.iter()
                    .map(|(n, g)| json!({"name": n, "groups": g}))
                    .collect(),
            );
            ctl.print(&v, || {
                table(
                    &["USER", "GROUPS"],
                    list.iter().map(|(n, g)| vec![n.clone(), g.join(", ")]).collect(),
                )
            });
        }
    }
    Ok(())
}

async fn command(ctl: &Ctl, conn: &Connection, command: Command) -> Outcome {
    match command {
        Command::List => {
            let rows = agents(conn, "list_agents").await?;
            let v = serde_json::to_value(&rows).map_err(|e| e.to_string())?;
            ctl.print(&v, || {
                table(
                    &["AGENT", "IDENTITY", "TAG", "PRIORITY", "AUTOSTART"],
                    rows.iter()
                        .map(|r| {
                            vec![
                                r.name.clone(),
                                r.identity.clone(),
                                r.tag.clone().unwrap_or_default(),
                                r.priority.map(|p| p.to_string()).unwrap_or_default(),
                                if r.autostart {
                                    "enabled".into()
                                } else {
                                    String::new()
                                },
                            ]
                        })
                        .collect(),
                )
            });
        }
        Command::Status { resources } => status(ctl, conn, resources).await?,
        Command::Health { agent } => {
            let rows = agents(conn, "list_agents").await?;
            let identity = select_one(&rows, &agent, By::default())
                .map(|a| a.identity.clone())
                .unwrap_or(agent);
            let health = call(conn, HEALTH, "get_platform_health", ()).await?;
            let entry = health
                .get(&identity)
                .cloned()
                .ok_or_else(|| format!("no health known for '{identity}'"))?;
            let v = serde_json::Value::from(entry);
            ctl.print(&v, || serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Command::Start(s) => for_selected(ctl, conn, &s, "start_agent", "Started").await?,
        Command::Stop(s) => for_selected(ctl, conn, &s, "stop_agent", "Stopped").await?,
        Command::Restart(s) => for_selected(ctl, conn, &s, "restart_agent", "Restarted").await?,
        Command::Remove(s) => for_selected(ctl, conn, &s, "remove_agent", "Removed").await?,
        Command::Disable(s) => for_selected(ctl, conn, &s, "disable_agent", "Disabled").await?,
        Command::Enable { selection, priority } => {
            let rows = agents(conn, "list_agents").await?;
            let chosen = select_all(&rows, &selection.patterns, by(&selection)).map_err(|e| e.to_string())?;
            for agent in chosen {
                call(conn, CONTROL, "enable_agent", (agent.identity.as_str(), priority)).await?;
                if !ctl.json {
                    println!("Enabled {}", agent.identity);
                }
            }
        }
        Command::Tag { agent, tag, remove } => {
            if tag.is_none() && !remove {
                return Err("give a tag, or --remove".into());
            }
            let rows = agents(conn, "list_agents").await?;
            let a = select_one(&rows, &agent, By::default()).map_err(|e| e.to_string())?;
            let tag = if remove { None } else { tag };
            call(conn, CONTROL, "tag_agent", (a.identity.as_str(), tag)).await?;
        }
        Command::Config(c) => config(ctl, conn, c).await?,
        Command::Auth(a) => auth(ctl, conn, a).await?,
        Command::Rpc(RpcCommand::Call {
            peer,
            method,
            args,
            platform,
        }) => {
            let args = RpcArgs {
                positional: args.iter().map(|a| json_arg(a)).collect(),
                named: Default::default(),
            };
            let v = match platform {
                None => call(conn, &peer, &method, args).await?,
                Some(platform) => conn
                    .call(&peer, &method, args)
                    .on_platform(&platform)
                    .await
                    .map_err(|e| format!("{peer}.{method} on {platform}: {e}"))?,
            };
            let v = serde_json::Value::from(v);
            ctl.print(&v, || v.to_string());
        }
        Command::Rpc(RpcCommand::List { peer }) => {
            let peers: Vec<String> = match peer {
                Some(p) => vec![p],
                None => conn.peers().iter().map(|p| p.to_string()).collect(),
            };
            let mut all = serde_json::Map::new();
            for p in peers {
                if let Ok(v) = call(conn, &p, "inspect", ()).await {
                    all.insert(p, serde_json::Value::from(v));
                }
            }
            let v = serde_json::Value::Object(all);
            ctl.print(&v, || serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Command::Publish { topic, message } => {
            // The platform's answer: how many subscribers it reached, or its refusal.
            let reached = conn
                .publish_confirmed(topic.as_str(), json_arg(&message))
                .await
                .map_err(|e| e.to_string())?;
            ctl.print(&serde_json::json!({ "reached": reached }), || {
                format!("reached {reached} subscriber(s)")
            });
        }
        Command::Subscribe {
            prefix,
            all_platforms,
        } => {
            let mut stream = if all_platforms {
                conn.subscribe_all_platforms(&prefix)
            } else {
                conn.subscribe(&prefix)
            }
            .map_err(|e| e.to_string())?;
            conn.ping(CONTROL).await.map_err(|e| e.to_string())?;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    p = stream.recv() => {
                        let Some(p) = p else { break };
                        let headers = serde_json::Value::from(Value::from(p.headers.clone()));
                        let message = serde_json::Value::from(p.message.clone());
                        if ctl.json {
                            println!("{}", json!({"sender": p.sender.as_str(), "topic": p.topic.as_str(), "headers": headers, "message": message, "origin": p.origin}));
                        } else {
                            println!("{} {} {} {}", p.sender, p.topic, headers, message);
                        }
                    }
                }
            }
        }
        Command::Alerts(c) => {
            let (v, text) = volttron::alerts::cli::run(conn, c).await?;
            ctl.print(&v, || text);
        }
        Command::Federation(c) => {
            let (v, text) = volttron::mqtt::cli::run(conn, c).await?;
            ctl.print(&v, || text);
        }
        Command::Simulation(c) => {
            let (v, text) = volttron::simulation::cli::run(conn, c).await?;
            ctl.print(&v, || text);
        }
        Command::Peerlist => {
            let peers: Vec<String> = conn.peers().iter().map(|p| p.to_string()).collect();
            ctl.print(&json!(peers), || peers.join("\n"));
        }
        Command::Shutdown { platform } => {
            let rows = agents(conn, "status_agents").await?;
            for r in rows.iter().filter(|r| r.pid.is_some()) {
                call(conn, CONTROL, "stop_agent", (r.identity.as_str(),)).await?;
            }
            if platform {
                // The platform may be gone before its reply is: a lost link is the
                // shutdown we asked for.
                match conn.call(CONTROL, "shutdown_platform", ()).await {
                    Ok(_) | Err(volttron::RpcError::PeerStopped { .. }) => {}
                    Err(e) => return Err(format!("{CONTROL}.shutdown_platform: {e}")),
                }
            }
        }
        Command::Install(_)
        | Command::Web(_)
        | Command::Audit { .. }
        | Command::Log { .. }
        | Command::Profile { .. } => {}
    }
    Ok(())
}

async fn config(ctl: &Ctl, conn: &Connection, c: ConfigCommand) -> Outcome {
    let store = CONFIG_STORE;
    match c {
        ConfigCommand::Store {
            identity,
            name,
            file,
            config_type,
            csv,
            raw,
        } => {
            let config_type = match (csv, raw) {
                (true, _) => "csv".to_owned(),
                (_, true) => "raw".to_owned(),
                _ => config_type,
            };
            let text = match &file {
                Some(file) => {
                    std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?
                }
                None => {
                    std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
                }
            };
            call(
                conn,
                store,
                "set_config",
                (identity.as_str(), name.as_str(), text, config_type.as_str()),
            )
            .await?;
        }
        ConfigCommand::Get { identity, name, raw } => {
            let v = call(conn, store, "get_config", (identity.as_str(), name.as_str(), raw)).await?;
            let j = serde_json::Value::from(v.clone());
            ctl.print(&j, || match v.as_str() {
                Some(s) if raw => s.to_owned(),
                _ => serde_json::to_string_pretty(&j).unwrap_or_default(),
            });
        }
        ConfigCommand::List { identity } => {
            let v = match identity {
                Some(id) => call(conn, store, "list_configs", (id.as_str(),)).await?,
                None => call(conn, store, "list_stores", ()).await?,
            };
            let j = serde_json::Value::from(v);
            ctl.print(&j, || {
                j.as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default()
            });
        }
        ConfigCommand::Delete { identity, name, all } => match (name, all) {
            (_, true) => {
                call(conn, store, "delete_store", (identity.as_str(),)).await?;
            }
            (Some(name), false) => {
                call(conn, store, "delete_config", (identity.as_str(), name.as_str())).await?;
            }
            (None, false) => return Err("give a configuration name, or --all".into()),
        },
        ConfigCommand::Edit { identity, name } => {
            let current = call(
                conn,
                store,
                "get_config",
                (identity.as_str(), name.as_str(), true),
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "{}".into());
            let file = tempfile::Builder::new()
                .suffix(".json")
                .tempfile()
                .map_err(|e| e.to_string())?;
            std::fs::write(file.path(), &current).map_err(|e| e.to_string())?;
            let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
            let status = std::process::Command::new(&editor)
                .arg(file.path())
                .status()
                .map_err(|e| format!("cannot run {editor}: {e}"))?;
            if !status.success() {
                return Err(format!("{editor} exited with {status}; nothing stored"));
            }
            let edited = std::fs::read_to_string(file.path()).map_err(|e| e.to_string())?;
            if edited != current {
                call(
                    conn,
                    store,
                    "set_config",
                    (identity.as_str(), name.as_str(), edited, "json"),
                )
                .await?;
            }
        }
    }
    Ok(())
}

async fn auth(ctl: &Ctl, conn: &Connection, a: AuthCommand) -> Outcome {
    let svc = AUTH;
    let v = match a {
        AuthCommand::List => call(conn, svc, "get_auth_entries", ()).await?,
        AuthCommand::Pending => call(conn, svc, "get_authorization_pending", ()).await?,
        AuthCommand::Roles => call(conn, svc, "get_roles", ()).await?,
        AuthCommand::Groups => call(conn, svc, "get_groups", ()).await?,
        AuthCommand::ProtectedTopics => call(conn, svc, "get_protected_topics", ()).await?,
        AuthCommand::Add {
            identity,
            public_key,
            publickey,
            comments,
        } => {
            let key = match public_key.or(publickey) {
                Some(key) => key,
                None => CredentialStore::new(ctl.home.path())
                    .load_or_create(&identity)
                    .map_err(|e| e.to_string())?
                    .public
                    .to_string(),
            };
            call(conn, svc, "add_auth_entry", (identity, key, comments)).await?
        }
        AuthCommand::Publickey { patterns, by } => {
            let rows = agents(conn, "list_agents").await?;
            let chosen: Vec<&AgentRecord> = if patterns.is_empty() {
                rows.iter().collect()
            } else {
                select_all(&rows, &patterns, by.by()).map_err(|e| e.to_string())?
            };
            let store = CredentialStore::new(ctl.home.path());
            let mut keys = serde_json::Map::new();
            let mut lines = Vec::new();
            for agent in chosen {
                let key = store
                    .public_key(&agent.identity)
                    .map_err(|e| e.to_string())?
                    .map(|k| k.to_string());
                lines.push(vec![
                    agent.name.clone(),
                    agent.identity.clone(),
                    agent.tag.clone().unwrap_or_default(),
                    key.clone().unwrap_or_default(),
                ]);
                keys.insert(agent.identity.clone(), json!(key));
            }
            let v = serde_json::Value::Object(keys);
            ctl.print(&v, || table(&["AGENT", "IDENTITY", "TAG", "PUBLICKEY"], lines));
            return Ok(());
        }
        AuthCommand::Remove { identity } => call(conn, svc, "remove_auth_entry", (identity,)).await?,
        AuthCommand::Approve { identity_or_key } => {
            call(conn, svc, "approve_authorization", (identity_or_key,)).await?
        }
        AuthCommand::Deny { identity_or_key } => {
            call(conn, svc, "deny_authorization", (identity_or_key,)).await?
        }
        AuthCommand::SetRole { name, capabilities } => {
            call(conn, svc, "set_role", (name, capabilities)).await?
        }
        AuthCommand::Protect {
            kind,
            prefix,
            capabilities,
        } => call(conn, svc, "set_protected_topic", (kind, prefix, capabilities)).await?,
        AuthCommand::Keypair | AuthCommand::Serverkey => Value::Null,
    };
    let j = serde_json::Value::from(v);
    ctl.print(&j, || {
        if j.is_null() {
            String::new()
        } else {
            serde_json::to_string_pretty(&j).unwrap_or_default()
        }
    });
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vctl: {e}");
            ExitCode::FAILURE
        }
    }
}
