//! Python agents under the control service: `vctl install` of a PyPI requirement (from a
//! prebuilt environment, where pip has nothing to do), of a wheel and of a project
//! directory; the launch environment, working directory and JSON log translation; failed
//! installs leaving nothing behind; a crashed Python agent restarted, one that ignores
//! SIGINT and SIGTERM ended by SIGKILL.
//!
//! The agents here are tiny packages made by the test (no VOLTTRON dependency, an in-tree
//! PEP 517 backend, so pip needs no network): the entry point writes its environment to
//! `data/env.<n>.json`, logs two JSON records on stderr as VOLTTRON's `JsonFormatter`
//! does, then crashes, waits for SIGINT, or ignores SIGINT and SIGTERM (its
//! `AGENT_CONFIG` says which). None connects over VIP.
//!
//! The real listener test needs the prebuilt environment of `bash .ci/test`
//! (`$VOLTTRON_TEST_PYTHON` or `target/vip-venv`, with `volttron-listener 2.0.0rc3`); the
//! others need `python3`. Each is skipped, with a message, when its need is missing, and
//! fails instead under `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{DEADLINE, Home, platform_wait};
use serde_json::Value;
use volttron::Platform;
use volttron::control::restart::RestartPolicy;
use volttron::home::python::{PackageSource, PythonEnv};

const AGENT_PY: &str = r#"import json, os, signal, stat, sys, time


def _record(level, name, msg, exc=None):
    sys.stderr.write(json.dumps({"name": "tiny.agent", "msg": msg, "levelno": level,
                                 "levelname": name, "created": time.time(),
                                 "pathname": __file__, "lineno": 1, "exc_text": exc}) + "\n")
    sys.stderr.flush()


def main():
    config = {}
    if os.environ.get("AGENT_CONFIG"):
        with open(os.environ["AGENT_CONFIG"]) as f:
            config = json.load(f)
    runs = len([f for f in os.listdir("data") if f.startswith("env.")]) + 1
    seen = {k: v for k, v in os.environ.items() if k.startswith(("AGENT_", "VOLTTRON_", "_LAUNCHED"))}
    seen["cwd"] = os.getcwd()
    seen["stderr_is_pipe"] = stat.S_ISFIFO(os.fstat(2).st_mode)
    seen["stdin"] = os.readlink("/proc/self/fd/0")
    seen["executable"] = sys.executable
    seen["prefix"] = sys.prefix
    with open("data/.env.tmp", "w") as f:
        json.dump(seen, f)
    os.rename("data/.env.tmp", "data/env.%d.json" % runs)
    if "_LAUNCHED_BY_PLATFORM" in os.environ and seen["stderr_is_pipe"]:
        _record(30, "WARNING", "tiny agent up")
        _record(40, "ERROR", "tiny agent trace", "Traceback (most recent call last):\nValueError: boom")
    print("plain stdout line", flush=True)
    sys.stderr.write("plain stderr line\n")
    sys.stderr.flush()
    mode = config.get("mode", "wait")
    if mode == "crash":
        sys.exit(3)
    if mode == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        sys.exit(0)


def other():
    pass
"#;

/// An in-tree PEP 517 backend: builds the wheel with `zipfile`, needs nothing installed.
const BACKEND_PY: &str = r#"import base64, hashlib, os, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "settings.txt")) as f:
    DIST, VERSION, ENTRY_POINTS, VIP_ID = [line.rstrip("\n") for line in f][:4]
NAME = DIST.replace("-", "_")
INFO = NAME + "-" + VERSION + ".dist-info"


def _files():
    with open(os.path.join(HERE, "tinyagent", "__init__.py")) as f:
        files = {"tinyagent/__init__.py": f.read()}
    files[INFO + "/METADATA"] = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (DIST, VERSION)
    files[INFO + "/WHEEL"] = "Wheel-Version: 1.0\nGenerator: tiny\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if ENTRY_POINTS:
        files[INFO + "/entry_points.txt"] = ENTRY_POINTS.replace("\\n", "\n") + "\n"
    if VIP_ID:
        files[DIST + "-default-vip-id"] = VIP_ID + "\n"
    return files


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if DIST.startswith("broken"):
        raise RuntimeError("this backend is broken on purpose")
    files = _files()
    record = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (path, digest, len(data)))
    record.append(INFO + "/RECORD,,")
    name = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
        z.writestr(INFO + "/RECORD", "\n".join(record) + "\n")
    return name
"#;

/// Writes a project directory for `dist` (entry points as `entry_points.txt` lines
/// separated by `\n`; empty for none) with an optional default identity file.
fn project(dir: &Path, dist: &str, entry_points: &str, vip_id: &str) -> PathBuf {
    let root = dir.join(dist);
    std::fs::create_dir_all(root.join("tinyagent")).unwrap();
    std::fs::write(
        root.join("pyproject.toml"),
        format!(
            "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n\n\
             [project]\nname = \"{dist}\"\nversion = \"0.1.0\"\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join("backend.py"), BACKEND_PY).unwrap();
    std::fs::write(
        root.join("settings.txt"),
        format!("{dist}\n0.1.0\n{entry_points}\n{vip_id}\n"),
    )
    .unwrap();
    std::fs::write(root.join("tinyagent").join("__init__.py"), AGENT_PY).unwrap();
    root
}

const TINY_ENTRY_POINTS: &str = "[console_scripts]\\nother = tinyagent:other\\ntiny-agent = tinyagent:main";

/// The tiny agent's wheel, built with the project's own backend.
fn wheel(dir: &Path) -> PathBuf {
    let root = project(dir, "tiny-agent", TINY_ENTRY_POINTS, "tiny.agent");
    let out = dir.join("dist");
    std::fs::create_dir_all(&out).unwrap();
    let built = Command::new("python3")
        .arg("-c")
        .arg("import sys; sys.path.insert(0, '.'); import backend; print(backend.build_wheel(sys.argv[1]))")
        .arg(&out)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    out.join(String::from_utf8(built.stdout).unwrap().trim())
}

/// Whether `python3` with venv and ensurepip is here; under `CI=true` it must be.
fn have_python3() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || !common::in_ci(),
        "no python3 with venv and ensurepip: install it with: bash .ci/test"
    );
    if !ok {
        eprintln!("skipped: no python3 with venv and ensurepip");
    }
    ok
}

/// The prebuilt environment holding volttron-listener 2.0.0rc3 (`bash .ci/test`'s).
fn prebuilt_venv() -> Option<PathBuf> {
    let python = common::require_python("control_python_agents")?;
    python.parent().and_then(Path::parent).map(Path::to_owned)
}

/// vctl with a clean Python configuration plus `env`.
fn vctl(home: &Home, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vctl"));
    command
        .arg("--volttron-home")
        .arg(home.path())
        .args(["-t", "60"])
        .args(args)
        .env_remove("VOLTTRON_PYTHON_ENV")
        .env_remove("VOLTTRON_PYTHON");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn ok(home: &Home, env: &[(&str, &Path)], args: &[&str]) -> String {
    let out = vctl(home, env, args);
    assert!(
        out.status.success(),
        "vctl {args:?} failed: {}\nplatform log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        home.log_tail()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one-line reason of a failed vctl call.
fn fails(home: &Home, env: &[(&str, &Path)], args: &[&str]) -> String {
    let out = vctl(home, env, args);
    assert!(!out.status.success(), "vctl {args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn wait_for_file(path: &Path, what: &str, log: impl Fn() -> String) -> Value {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).unwrap();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: no {}\n{}",
            path.display(),
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until(what: &str, f: impl Fn() -> bool, log: impl Fn() -> String) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "{what}\n{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What's in the home besides the platform's own files: installed agents and
/// credentials other than the platform's and vctl's.
fn leftovers(home: &Home) -> Vec<String> {
    let mut found = Vec::new();
    for sub in ["agents", "credentials_store"] {
        for entry in std::fs::read_dir(home.path().join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("platform") && !name.starts_with("control.connection") {
                found.push(format!("{sub}/{name}"));
            }
        }
    }
    found
}

#[test]
fn the_listener_installs_from_a_prebuilt_environment_with_its_default_identity() {
    let Some(venv) = prebuilt_venv() else { return };
    let home = Home::with_config("");
    let platform = home.start_platform();
    let env = [("VOLTTRON_PYTHON_ENV", venv.as_path())];

    // pip has nothing to do: the pinned version is installed already.
    let out = ok(&home, &env, &["install", "volttron-listener==2.0.0rc3", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    // The wheel's `volttron-listener-default-vip-id` holds "default-listener-vip".
    assert_eq!(v["identity"], "default-listener-vip");
    let dir = home.path().join("agents").join("default-listener-vip");
    assert_eq!(read(&dir.join("NAME")), "volttron-listener-2.0.0rc3");
    let uuid = read(&dir.join("UUID"));
    assert_eq!(uuid::Uuid::parse_str(&uuid).unwrap().get_version_num(), 4);
    let python: Value = serde_json::from_str(&read(&dir.join("PYTHON"))).unwrap();
    assert_eq!(python["entry_point"], "listener.agent:main");
    assert_eq!(python["distribution"], "volttron-listener");
    assert_eq!(python["version"], "2.0.0rc3");
    assert_eq!(
        Path::new(python["env"].as_str().unwrap()),
        std::fs::canonicalize(&venv).unwrap()
    );
    assert!(dir.join("data").is_dir());
    assert!(!dir.join("config").exists(), "no --agent-config, no config file");
    assert!(
        home.path()
            .join("credentials_store/default-listener-vip.json")
            .is_file()
    );

    // A second instance under its own identity shares the installed code; --force
    // replaces it and keeps its UUID.
    let config = home.write("listener.json", "{\"message\": \"hi\"}\n");
    let config = config.to_str().unwrap();
    ok(
        &home,
        &env,
        &[
            "install",
            "volttron-listener==2.0.0rc3",
            "--vip-identity",
            "listener",
            "--agent-config",
            config,
            "--tag",
            "py",
        ],
    );
    let second = home.path().join("agents").join("listener");
    assert_eq!(read(&second.join("config")), "{\"message\": \"hi\"}\n");
    let err = fails(
        &home,
        &env,
        &[
            "install",
            "volttron-listener==2.0.0rc3",
            "--vip-identity",
            "listener",
        ],
    );
    assert!(err.contains("--force"), "{err}");
    let before = read(&second.join("UUID"));
    ok(
        &home,
        &env,
        &[
            "install",
            "volttron-listener==2.0.0rc3",
            "--vip-identity",
            "listener",
            "--force",
        ],
    );
    assert_eq!(read(&second.join("UUID")), before);
    let list: Vec<Value> = serde_json::from_str(&ok(&home, &[], &["list", "--json"])).unwrap();
    let listener = list.iter().find(|a| a["identity"] == "listener").unwrap();
    assert_eq!(listener["name"], "volttron-listener-2.0.0rc3");
    assert_eq!(listener["tag"], "py", "a reinstall keeps the tag");

    ok(&home, &[], &["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}

#[test]
fn wheels_and_projects_install_into_the_homes_environment_and_launch_as_volttron_does() {
    if !have_python3() {
        return;
    }
    let home = Home::with_config("");
    let work = tempfile::tempdir().unwrap();
    let wheel = wheel(work.path());
    let platform = home.start_platform();

    // The first Python install makes $VOLTTRON_HOME/python with python3 -m venv.
    let wait = home.write("wait.json", "{\"mode\": \"wait\"}");
    let out = ok(
        &home,
        &[],
        &[
            "install",
            wheel.to_str().unwrap(),
            "--agent-config",
            wait.to_str().unwrap(),
            "--tag",
            "tiny",
            "--start",
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["identity"], "tiny.agent", "from tiny-agent-default-vip-id");
    assert!(v["pid"].as_u64().is_some(), "{v}");
    let venv = home.path().join("python");
    assert!(venv.join("bin").join("python").exists());
    let dir = home.path().join("agents").join("tiny.agent");
    assert_eq!(read(&dir.join("NAME")), "tiny-agent-0.1.0");
    let python: Value = serde_json::from_str(&read(&dir.join("PYTHON"))).unwrap();
    assert_eq!(
        python["entry_point"], "tinyagent:main",
        "the one named like the distribution"
    );

    let seen = wait_for_file(&dir.join("data/env.1.json"), "the wheel's agent ran", || {
        home.log_tail()
    });
    let dir_real = std::fs::canonicalize(&dir).unwrap();
    assert_eq!(Path::new(seen["cwd"].as_str().unwrap()), dir_real);
    assert_eq!(seen["stdin"], "/dev/null");
    assert_eq!(seen["stderr_is_pipe"], true);
    assert_eq!(
        Path::new(seen["prefix"].as_str().unwrap()),
        std::fs::canonicalize(&venv).unwrap(),
        "run by the environment's interpreter"
    );
    assert_eq!(seen["VOLTTRON_HOME"], home.path().to_str().unwrap());
    assert_eq!(seen["AGENT_VIP_IDENTITY"], "tiny.agent");
    assert_eq!(seen["AGENT_UUID"], read(&dir.join("UUID")).as_str());
    assert_eq!(seen["AGENT_TAG"], "tiny");
    assert_eq!(
        Path::new(seen["AGENT_CONFIG"].as_str().unwrap()),
        dir.join("config")
    );
    assert_eq!(seen["_LAUNCHED_BY_PLATFORM"], "1");
    for absent in ["VOLTTRON_PLATFORM_ADDRESS", "VOLTTRON_SERVERKEY"] {
        assert!(
            seen.get(absent).is_none(),
            "{absent} is the bridge's, not a Python agent's"
        );
    }
    let creds_text = seen["AGENT_CREDENTIALS"].as_str().unwrap();
    assert!(creds_text.split('/').all(|piece| piece.len() <= 255));
    let creds: Value = serde_json::from_str(creds_text).unwrap();
    assert_eq!(creds["identity"], "tiny.agent");
    assert_eq!(
        (creds["domain"].as_str(), creds["address"].as_str()),
        (Some(""), Some(""))
    );
    assert_eq!(creds["secretkey"].as_str().unwrap().len(), 43);
    let keys: Value =
        serde_json::from_str(&ok(&home, &[], &["auth", "publickey", "tiny.agent", "--json"])).unwrap();
    assert_eq!(
        keys["tiny.agent"], creds["publickey"],
        "the agent's stored key pair"
    );

    // Its JSON records are logged at their levels with the logger's name; other lines
    // as they are.
    let log = || read(&home.log_path());
    wait_until(
        "the records are in the platform log",
        || log().contains("tiny agent trace") && log().contains("plain stderr line"),
        || home.log_tail(),
    );
    let text = log();
    let line = |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap().to_owned();
    let up = line("tiny agent up");
    assert!(
        up.contains(" WARN ") && up.contains("logger=\"tiny.agent\"") && up.contains("agent=tiny.agent"),
        "{up}"
    );
    assert!(!up.contains("{\""), "the record, not its JSON: {up}");
    let trace = line("tiny agent trace");
    assert!(
        trace.contains("ERROR") && trace.contains("exc_text=") && trace.contains("ValueError: boom"),
        "{trace}"
    );
    let plain = line("plain stderr line");
    assert!(
        plain.contains("INFO") && plain.contains("stream=\"stderr\""),
        "{plain}"
    );
    assert!(line("plain stdout line").contains("stream=\"stdout\""));

    // A project directory, a second instance of the same distribution: one installed
    // copy in the environment.
    let root = project(work.path(), "tiny-agent", TINY_ENTRY_POINTS, "tiny.agent");
    ok(
        &home,
        &[],
        &[
            "install",
            root.to_str().unwrap(),
            "--vip-identity",
            "tiny.two",
            "--agent-config",
            wait.to_str().unwrap(),
            "--start",
        ],
    );
    let two = home.path().join("agents").join("tiny.two");
    let seen2 = wait_for_file(&two.join("data/env.1.json"), "the project's agent ran", || {
        home.log_tail()
    });
    assert_eq!(seen2["AGENT_VIP_IDENTITY"], "tiny.two");
    assert!(seen2.get("AGENT_TAG").is_none(), "no tag, no AGENT_TAG");
    assert_eq!(read(&two.join("NAME")), "tiny-agent-0.1.0");

    // SIGINT stops them (Python's KeyboardInterrupt).
    ok(&home, &[], &["stop", "tiny.agent", "tiny.two"]);
    let status = home.status();
    for id in ["tiny.agent", "tiny.two"] {
        let a = status.iter().find(|a| a["identity"] == id).unwrap();
        assert_eq!(a["state"], "stopped", "{a}");
    }
    ok(&home, &[], &["remove", "tiny.two"]);
    assert!(!two.exists());
    ok(&home, &[], &["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}

#[test]
fn failed_python_installs_leave_nothing_behind() {
    if !have_python3() {
        return;
    }
    let home = Home::with_config("");
    let work = tempfile::tempdir().unwrap();
    let platform = home.start_platform();
    let before = leftovers(&home);

    // No interpreter: a typed error, and no half-made environment.
    let missing = work.path().join("no-python");
    let err = fails(
        &home,
        &[("VOLTTRON_PYTHON", missing.as_path())],
        &["install", "tiny-agent==0.1.0"],
    );
    assert!(err.contains("cannot run the Python interpreter"), "{err}");
    assert!(!home.path().join("python").exists());
    // $VOLTTRON_PYTHON_ENV must be an environment.
    let err = fails(
        &home,
        &[("VOLTTRON_PYTHON_ENV", work.path())],
        &["install", "tiny-agent==0.1.0"],
    );
    assert!(err.contains("is not a Python environment"), "{err}");

    // An environment of our own, named by $VOLTTRON_PYTHON_ENV.
    let venv = work.path().join("venv");
    PythonEnv::open_or_create(&venv).unwrap();
    let env = [("VOLTTRON_PYTHON_ENV", venv.as_path())];

    // pip fails: an invalid requirement, a project whose build fails. Its last stderr
    // lines are in the one-line error.
    let err = fails(&home, &env, &["install", "tiny-agent===="]);
    assert!(err.contains("pip install tiny-agent==== failed"), "{err}");
    let broken = project(work.path(), "broken-agent", TINY_ENTRY_POINTS, "");
    let err = fails(&home, &env, &["install", broken.to_str().unwrap()]);
    assert!(
        err.contains("pip install") && err.contains("broken on purpose"),
        "{err}"
    );

    // Installed by pip, but nothing to run.
    let none = project(work.path(), "noentry-agent", "", "noentry");
    let err = fails(
        &home,
        &env,
        &["install", none.to_str().unwrap(), "--vip-identity", "noentry"],
    );
    assert!(err.contains("noentry-agent 0.1.0 has no entry point"), "{err}");
    // An entry point that is not module:function.
    let bad = project(
        work.path(),
        "badentry-agent",
        "[volttron.agent]\\nbadentry-agent = tinyagent",
        "",
    );
    let err = fails(&home, &env, &["install", bad.to_str().unwrap()]);
    assert!(err.contains("is not `module:function`"), "{err}");

    // Neither a path nor a requirement; a directory that is no project.
    let err = fails(&home, &env, &["install", "./nowhere/agent"]);
    assert!(err.contains("no such file or directory"), "{err}");
    let err = fails(&home, &env, &["install", work.path().to_str().unwrap()]);
    assert!(err.contains("neither a cargo project"), "{err}");

    assert_eq!(leftovers(&home), before, "no agent directory, no credentials");
    let stores: Vec<Value> = serde_json::from_str(&ok(&home, &[], &["config", "list", "--json"])).unwrap();
    assert!(
        stores.is_empty(),
        "nothing in the configuration store: {stores:?}"
    );
    assert!(home.status().is_empty());
    ok(&home, &[], &["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_python_agent_is_restarted_and_a_stubborn_one_is_killed() {
    if !have_python3() {
        return;
    }
    common::captured_log();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    let root = project(work.path(), "tiny-agent", TINY_ENTRY_POINTS, "tiny.agent");
    let venv = work.path().join("venv");
    let package = tokio::task::spawn_blocking(move || {
        PythonEnv::open_or_create(&venv)
            .unwrap()
            .install_package(&PackageSource::Project(root), false)
            .unwrap()
    })
    .await
    .unwrap();
    const GRACE: Duration = Duration::from_millis(300);
    let platform = Platform::builder()
        .home(&home)
        .auth(false)
        .control(true)
        .agent_stop_grace(GRACE)
        .agent_restart(RestartPolicy {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(100),
            limit: 2,
            period: Duration::from_secs(60),
        })
        .start()
        .await
        .unwrap();
    let control = volttron::services::control::IDENTITY;
    let python = volttron::to_value(&package.program).unwrap();
    for (identity, mode) in [("py.crash", "crash"), ("py.stubborn", "stubborn")] {
        let config = work.path().join(format!("{mode}.json"));
        std::fs::write(&config, format!("{{\"mode\": \"{mode}\"}}")).unwrap();
        let args = volttron::Args::new()
            .kwarg("source", "")
            .kwarg("identity", identity)
            .kwarg("name", package.distribution.agent_name())
            .kwarg("config", config.display().to_string())
            .kwarg("python", python.clone());
        platform.call(control, "install_agent", args).await.unwrap();
        platform.call(control, "start_agent", (identity,)).await.unwrap();
    }
    let agents = home.join("agents");
    let log = || {
        common::log_text()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Exit code 3: restarted twice (the limit), then given up on.
    for run in 1..=3 {
        wait_for_file(
            &agents.join(format!("py.crash/data/env.{run}.json")),
            &format!("crash run {run}"),
            log,
        );
    }
    let status = || async {
        let v = platform.call(control, "status_agents", ()).await.unwrap();
        serde_json::Value::from(v)
    };
    let start = Instant::now();
    loop {
        let s = status().await;
        let crash = s
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["identity"] == "py.crash")
            .unwrap()
            .clone();
        if crash["state"] == "gave up" {
            assert_eq!(crash["last_exit"], "exit code 3");
            break;
        }
        assert!(start.elapsed() < DEADLINE, "{crash}\n{}", log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!agents.join("py.crash/data/env.4.json").exists());

    // Ignores SIGINT and SIGTERM: SIGKILL after two grace periods.
    wait_for_file(&agents.join("py.stubborn/data/env.1.json"), "stubborn ran", log);
    let started = Instant::now();
    let exit = platform
        .call(control, "stop_agent", ("py.stubborn",))
        .await
        .unwrap();
    assert_eq!(serde_json::Value::from(exit), "signal 9 (SIGKILL)");
    assert!(started.elapsed() >= GRACE * 2, "{:?}", started.elapsed());
    let s = status().await;
    let stubborn = s
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["identity"] == "py.stubborn")
        .unwrap()
        .clone();
    assert_eq!(stubborn["state"], "stopped", "{stubborn}");
    assert!(stubborn.get("pid").is_none());
    platform.shutdown().await;

    let text = common::log_text();
    assert!(
        text.lines()
            .any(|l| l.contains("tiny agent up") && l.contains("WARN") && l.contains("agent=py.crash")),
        "records logged in process too"
    );
}
