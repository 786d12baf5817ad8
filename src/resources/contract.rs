//! An agent's execution requirements (its *contract*) and the machine facts they are
//! checked against.
//!
//! The contract is a JSON file in the agent's directory, `exereqs.json` (VOLTTRON's
//! documented name; its code and packaging tools spell it `execreqs.json`, which is
//! accepted too, [`Contract::find`]):
//!
//! ```json
//! { "requirements": { "cpu.bogomips": 100, "memory.soft_limit_in_bytes": 2000000 },
//!   "hard_requirements": { "os": "GNU/Linux", "memory.total": 2064328 } }
//! ```
//!
//! `requirements` (the *soft* requirements) is mandatory and may be empty; it reserves
//! part of the platform's budget (see [`admission`](super::admission)):
//!
//! | key | value |
//! |-----|-------|
//! | `cpu.bogomips` | an integer N >= 1 (MIPS), or a fraction 0 < N < 1 of the machine's total BogoMIPS |
//! | `memory.soft_limit_in_bytes` | an integer number of bytes |
//!
//! `hard_requirements` is optional; each term must equal the [`Machine`]'s fact:
//!
//! | key | value | fact |
//! |-----|-------|------|
//! | `kernel.name` | string | `uname` sysname (`Linux`) |
//! | `kernel.release` | string | `uname` release (`6.8.0-45-generic`) |
//! | `kernel.version` | string | `uname` version (`#45-Ubuntu SMP PREEMPT_DYNAMIC …`) |
//! | `architecture` | string | `uname` machine (`x86_64`) |
//! | `os` | string | `GNU/Linux` (see [`Machine::probe`]) |
//! | `platform.version` | string | this crate's version (`0.1.0`) |
//! | `memory.total` | integer | `MemTotal` of `/proc/meminfo`, in kB |
//! | `bogomips.total` | number | the sum of the `bogomips` lines of `/proc/cpuinfo` |
//!
//! ## Differences from VOLTTRON
//!
//! * Parsing is strict: an unknown key, a value of the wrong type or out of range, or a
//!   missing `requirements` object is a [`ContractError`] naming the key. VOLTTRON loaded
//!   the JSON and looked keys up, so a misspelled key was silently ignored.
//! * VOLTTRON's open-source `resmon.py` only knows `kernel.*`, `architecture`, `os` (and
//!   `distribution.*` from `/etc/lsb-release`, not supported here): `memory.total`,
//!   `bogomips.total` and `platform.version` are documented but never provided, so a
//!   contract naming them always failed there. They are provided here.
//! * `memory.total` is documented by VOLTTRON as "in bytes", but its worked example takes
//!   the number from `grep MemTotal /proc/meminfo`, which is in kB (`2064328` is 2 GB).
//!   The example wins: `memory.total` is in kB.
//! * `platform.version` is documented as "version of VOLTTRON in use"; here it is the
//!   version of this crate.
//! * Hard terms are compared by value: strings exactly, `memory.total` as an integer,
//!   `bogomips.total` to within 0.005 (`/proc/cpuinfo` has two decimals). VOLTTRON
//!   compared Python values with `!=`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::admission::{Refusal, RefusedTerm};

/// The contract's file name in the agent directory, as VOLTTRON documents it.
pub const FILE_NAME: &str = "exereqs.json";

/// The spelling VOLTTRON's code and `volttron-pkg` use; accepted as well.
pub const ALT_FILE_NAME: &str = "execreqs.json";

/// The soft requirement for CPU.
pub const CPU_BOGOMIPS: &str = "cpu.bogomips";

/// The soft requirement for memory.
pub const MEMORY_SOFT_LIMIT: &str = "memory.soft_limit_in_bytes";

/// The top-level key of the soft requirements.
pub const REQUIREMENTS: &str = "requirements";

/// The top-level key of the hard requirements.
pub const HARD_REQUIREMENTS: &str = "hard_requirements";

/// Where `/proc/meminfo` is.
const MEMINFO: &str = "/proc/meminfo";

/// Where `/proc/cpuinfo` is.
const CPUINFO: &str = "/proc/cpuinfo";

/// How far apart two BogoMIPS totals may be and still match.
const BOGOMIPS_TOLERANCE: f64 = 0.005;

/// A CPU request (`cpu.bogomips`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuRequest {
    /// An absolute amount, in MIPS (an integer N >= 1 in the file).
    Mips(u64),
    /// A share of the machine's total BogoMIPS (0 < N < 1 in the file).
    Fraction(f64),
}

impl CpuRequest {
    /// The request in MIPS on a machine with `total_bogomips`.
    pub fn mips(self, total_bogomips: f64) -> f64 {
        match self {
            CpuRequest::Mips(n) => n as f64,
            CpuRequest::Fraction(f) => f * total_bogomips,
        }
    }
}

impl fmt::Display for CpuRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuRequest::Mips(n) => write!(f, "{n} MIPS"),
            CpuRequest::Fraction(x) => write!(f, "{x} of the total BogoMIPS"),
        }
    }
}

/// The soft requirements (`requirements`): what the agent reserves from the budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoftRequirements {
    /// `cpu.bogomips`, when given.
    pub cpu: Option<CpuRequest>,
    /// `memory.soft_limit_in_bytes`, when given.
    pub memory_soft_limit: Option<u64>,
}

/// A hard requirement's key: a fact of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HardKey {
    /// `kernel.name`: `uname` sysname.
    #[serde(rename = "kernel.name")]
    KernelName,
    /// `kernel.release`: `uname` release.
    #[serde(rename = "kernel.release")]
    KernelRelease,
    /// `kernel.version`: `uname` version.
    #[serde(rename = "kernel.version")]
    KernelVersion,
    /// `architecture`: `uname` machine.
    #[serde(rename = "architecture")]
    Architecture,
    /// `os`: `GNU/Linux` on Linux with glibc.
    #[serde(rename = "os")]
    Os,
    /// `platform.version`: this crate's version.
    #[serde(rename = "platform.version")]
    PlatformVersion,
    /// `memory.total`: `MemTotal`, in kB.
    #[serde(rename = "memory.total")]
    MemoryTotal,
    /// `bogomips.total`: the sum of all processors' BogoMIPS.
    #[serde(rename = "bogomips.total")]
    BogomipsTotal,
}

impl HardKey {
    /// Every key, in the order of the documentation.
    pub const ALL: [HardKey; 8] = [
        HardKey::KernelName,
        HardKey::KernelRelease,
        HardKey::KernelVersion,
        HardKey::Architecture,
        HardKey::Os,
        HardKey::PlatformVersion,
        HardKey::MemoryTotal,
        HardKey::BogomipsTotal,
    ];

    /// The key as written in the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            HardKey::KernelName => "kernel.name",
            HardKey::KernelRelease => "kernel.release",
            HardKey::KernelVersion => "kernel.version",
            HardKey::Architecture => "architecture",
            HardKey::Os => "os",
            HardKey::PlatformVersion => "platform.version",
            HardKey::MemoryTotal => "memory.total",
            HardKey::BogomipsTotal => "bogomips.total",
        }
    }

    /// The key written as `key`, if it is one.
    pub fn from_key(key: &str) -> Option<HardKey> {
        HardKey::ALL.into_iter().find(|k| k.as_str() == key)
    }
}

impl fmt::Display for HardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hard requirement's value, or a machine's fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HardValue {
    /// `memory.total`.
    Integer(u64),
    /// `bogomips.total`.
    Number(f64),
    /// The string facts.
    Text(String),
}

impl HardValue {
    /// Whether a required value (`self`) is met by the machine's `actual` value.
    pub fn matches(&self, actual: &HardValue) -> bool {
        match (self, actual) {
            (HardValue::Text(a), HardValue::Text(b)) => a == b,
            (HardValue::Integer(a), HardValue::Integer(b)) => a == b,
            (HardValue::Number(a), HardValue::Number(b)) => (a - b).abs() < BOGOMIPS_TOLERANCE,
            (HardValue::Integer(a), HardValue::Number(b)) | (HardValue::Number(b), HardValue::Integer(a)) => {
                (*a as f64 - b).abs() < BOGOMIPS_TOLERANCE
            }
            _ => false,
        }
    }
}

impl fmt::Display for HardValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HardValue::Integer(n) => write!(f, "{n}"),
            HardValue::Number(x) => write!(f, "{x}"),
            HardValue::Text(s) => write!(f, "{}", Value::String(s.clone())),
        }
    }
}

/// One hard requirement: `key` must equal the machine's fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardRequirement {
    /// The fact.
    pub key: HardKey,
    /// The value it must have.
    pub value: HardValue,
}

/// An agent's execution requirements, parsed from `exereqs.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    /// What the agent reserves (`requirements`).
    pub soft: SoftRequirements,
    /// What the machine must be (`hard_requirements`), ordered by [`HardKey`].
    pub hard: Vec<HardRequirement>,
}

/// The part of a contract an unknown key was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Section {
    /// The top-level object.
    TopLevel,
    /// `requirements`.
    Requirements,
    /// `hard_requirements`.
    HardRequirements,
}

impl Section {
    /// The keys this section accepts.
    pub fn known_keys(self) -> Vec<&'static str> {
        match self {
            Section::TopLevel => vec![REQUIREMENTS, HARD_REQUIREMENTS],
            Section::Requirements => vec![CPU_BOGOMIPS, MEMORY_SOFT_LIMIT],
            Section::HardRequirements => HardKey::ALL.iter().map(|k| k.as_str()).collect(),
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::TopLevel => f.write_str("the top level"),
            Section::Requirements => write!(f, "\"{REQUIREMENTS}\""),
            Section::HardRequirements => write!(f, "\"{HARD_REQUIREMENTS}\""),
        }
    }
}

/// Why a contract could not be read. `origin` names the file (or whatever the text came
/// from) in every message.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The text is not JSON.
    #[error("{origin}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The mandatory `requirements` object is absent.
    #[error("{origin}: the \"requirements\" object is missing (it may be empty: \"requirements\": {{}})")]
    MissingRequirements {
        /// Where the text came from.
        origin: String,
    },
    /// A key that is not part of the format.
    #[error("{origin}: unknown key \"{key}\" in {section} (known: {})", section.known_keys().join(", "))]
    UnknownKey {
        /// Where the text came from.
        origin: String,
        /// The key.
        key: String,
        /// Where it was found.
        section: Section,
    },
    /// A value of the wrong JSON type.
    #[error("{origin}: {} must be {expected}, found {found}", key_label(key))]
    WrongType {
        /// Where the text came from.
        origin: String,
        /// The key; empty for the document itself.
        key: String,
        /// What the value must be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// A value of the right type outside the allowed range.
    #[error("{origin}: \"{key}\" is {value}, outside the allowed range: {allowed}")]
    OutOfRange {
        /// Where the text came from.
        origin: String,
        /// The key.
        key: String,
        /// The value, as JSON.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// The agent directory has both spellings of the file.
    #[error(
        "{} has both {FILE_NAME} and {ALT_FILE_NAME}: keep one of them",
        dir.display()
    )]
    BothSpellings {
        /// The agent directory.
        dir: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

fn key_label(key: &str) -> String {
    if key.is_empty() {
        "the document".to_owned()
    } else {
        format!("\"{key}\"")
    }
}

/// The JSON type of `value`, for [`ContractError::WrongType`].
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "an integer",
        Value::Number(_) => "a floating-point number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const CPU_ALLOWED: &str = "an integer >= 1 (MIPS) or a fraction 0 < N < 1 of the total BogoMIPS";

impl Contract {
    /// Parses a contract; `origin` (usually the file's path) prefixes every error message.
    pub fn parse(text: &str, origin: &str) -> Result<Contract, ContractError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            ContractError::Json {
                origin: origin.to_owned(),
                line: e.line(),
                column: e.column(),
                message,
            }
        })?;
        let p = Parser { origin };
        let top = p.object("", &doc)?;
        if let Some(key) = top.keys().find(|k| *k != REQUIREMENTS && *k != HARD_REQUIREMENTS) {
            return Err(p.unknown(key, Section::TopLevel));
        }
        let soft = match top.get(REQUIREMENTS) {
            None => {
                return Err(ContractError::MissingRequirements {
                    origin: origin.to_owned(),
                });
            }
            Some(v) => p.soft(p.object(REQUIREMENTS, v)?)?,
        };
        let hard = match top.get(HARD_REQUIREMENTS) {
            None => Vec::new(),
            Some(v) => p.hard(p.object(HARD_REQUIREMENTS, v)?)?,
        };
        Ok(Contract { soft, hard })
    }

    /// Reads the contract of the agent in `agent_dir`: `exereqs.json`, or VOLTTRON's
    /// `execreqs.json`. `Ok(None)` when there is neither (the agent reserves nothing);
    /// an error when there are both.
    pub fn find(agent_dir: &Path) -> Result<Option<(PathBuf, Contract)>, ContractError> {
        let mut found = Vec::new();
        for name in [FILE_NAME, ALT_FILE_NAME] {
            let path = agent_dir.join(name);
            match fs::read_to_string(&path) {
                Ok(text) => found.push((path, text)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(ContractError::Io { path, source }),
            }
        }
        if found.len() > 1 {
            return Err(ContractError::BothSpellings {
                dir: agent_dir.to_owned(),
            });
        }
        match found.pop() {
            None => Ok(None),
            Some((path, text)) => {
                let contract = Contract::parse(&text, &path.display().to_string())?;
                Ok(Some((path, contract)))
            }
        }
    }

    /// Whether the contract neither reserves nor requires anything.
    pub fn is_empty(&self) -> bool {
        self.soft == SoftRequirements::default() && self.hard.is_empty()
    }

    /// Checks every hard requirement against `machine`. The refusal lists each term that
    /// does not match (it names no agent: see [`Refusal::for_agent`]).
    pub fn check_hard(&self, machine: &Machine) -> Result<(), Refusal> {
        let terms: Vec<RefusedTerm> = self
            .hard
            .iter()
            .filter_map(|req| {
                let actual = machine.fact(req.key);
                (!req.value.matches(&actual)).then(|| RefusedTerm::Hard {
                    key: req.key,
                    required: req.value.clone(),
                    actual,
                })
            })
            .collect();
        if terms.is_empty() {
            Ok(())
        } else {
            Err(Refusal { agent: None, terms })
        }
    }
}

/// Parsing helpers that know the origin.
struct Parser<'a> {
    origin: &'a str,
}

impl Parser<'_> {
    fn object<'v>(&self, key: &str, value: &'v Value) -> Result<&'v Map<String, Value>, ContractError> {
        value
            .as_object()
            .ok_or_else(|| self.wrong_type(key, "an object", value))
    }

    fn unknown(&self, key: &str, section: Section) -> ContractError {
        ContractError::UnknownKey {
            origin: self.origin.to_owned(),
            key: key.to_owned(),
            section,
        }
    }

    fn wrong_type(&self, key: &str, expected: &'static str, value: &Value) -> ContractError {
        ContractError::WrongType {
            origin: self.origin.to_owned(),
            key: key.to_owned(),
            expected,
            found: kind(value),
        }
    }

    fn out_of_range(&self, key: &str, value: &Value, allowed: &'static str) -> ContractError {
        ContractError::OutOfRange {
            origin: self.origin.to_owned(),
            key: key.to_owned(),
            value: value.to_string(),
            allowed,
        }
    }

    fn soft(&self, section: &Map<String, Value>) -> Result<SoftRequirements, ContractError> {
        let mut soft = SoftRequirements::default();
        for (key, value) in section {
            match key.as_str() {
                CPU_BOGOMIPS => soft.cpu = Some(self.cpu(key, value)?),
                MEMORY_SOFT_LIMIT => {
                    soft.memory_soft_limit =
                        Some(self.unsigned(key, value, "an integer number of bytes", "0 or more bytes")?)
                }
                _ => return Err(self.unknown(key, Section::Requirements)),
            }
        }
        Ok(soft)
    }

    fn cpu(&self, key: &str, value: &Value) -> Result<CpuRequest, ContractError> {
        let Value::Number(n) = value else {
            return Err(self.wrong_type(key, "a number (MIPS, or a fraction of the total)", value));
        };
        if let Some(n) = n.as_u64() {
            return if n >= 1 {
                Ok(CpuRequest::Mips(n))
            } else {
                Err(self.out_of_range(key, value, CPU_ALLOWED))
            };
        }
        if n.is_i64() {
            return Err(self.out_of_range(key, value, CPU_ALLOWED));
        }
        let x = n.as_f64().unwrap_or(f64::NAN);
        if x > 0.0 && x < 1.0 {
            Ok(CpuRequest::Fraction(x))
        } else if x >= 1.0 && x.fract() == 0.0 && x < 2f64.powi(53) {
            // `100.0` is the integer 100.
            Ok(CpuRequest::Mips(x as u64))
        } else {
            Err(self.out_of_range(key, value, CPU_ALLOWED))
        }
    }

    /// A non-negative integer; a negative one is out of range, anything else the wrong type.
    fn unsigned(
        &self,
        key: &str,
        value: &Value,
        expected: &'static str,
        allowed: &'static str,
    ) -> Result<u64, ContractError> {
        match value {
            Value::Number(n) if n.is_u64() => Ok(n.as_u64().unwrap_or_default()),
            Value::Number(n) if n.is_i64() => Err(self.out_of_range(key, value, allowed)),
            _ => Err(self.wrong_type(key, expected, value)),
        }
    }

    fn hard(&self, section: &Map<String, Value>) -> Result<Vec<HardRequirement>, ContractError> {
        let mut hard = Vec::with_capacity(section.len());
        for (name, value) in section {
            let Some(key) = HardKey::from_key(name) else {
                return Err(self.unknown(name, Section::HardRequirements));
            };
            let value = match key {
                HardKey::MemoryTotal => HardValue::Integer(self.unsigned(
                    name,
                    value,
                    "an integer (kB, as MemTotal in /proc/meminfo)",
                    "0 kB or more",
                )?),
                HardKey::BogomipsTotal => match value {
                    Value::Number(n) => {
                        let x = n.as_f64().unwrap_or(f64::NAN);
                        if x >= 0.0 {
                            HardValue::Number(x)
                        } else {
                            return Err(self.out_of_range(name, value, "0 or more"));
                        }
                    }
                    _ => return Err(self.wrong_type(name, "a number", value)),
                },
                _ => match value {
                    Value::String(s) => HardValue::Text(s.clone()),
                    _ => return Err(self.wrong_type(name, "a string", value)),
                },
            };
            hard.push(HardRequirement { key, value });
        }
        hard.sort_by_key(|r| r.key);
        Ok(hard)
    }
}

/// The facts of a machine that hard requirements name and budgets are made from.
///
/// A plain struct: [`Machine::probe`] reads this machine's, tests build one by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `kernel.name`: `uname` sysname (`Linux`).
    pub kernel_name: String,
    /// `kernel.release`: `uname` release.
    pub kernel_release: String,
    /// `kernel.version`: `uname` version.
    pub kernel_version: String,
    /// `architecture`: `uname` machine (`x86_64`, `aarch64`).
    pub architecture: String,
    /// `os`: `GNU/Linux` on Linux with glibc.
    pub os: String,
    /// `platform.version`: the platform's version.
    pub platform_version: String,
    /// `memory.total`: `MemTotal`, in kB (1024 bytes).
    pub memory_total_kb: u64,
    /// `bogomips.total`: the sum of every processor's BogoMIPS.
    pub bogomips_total: f64,
}

/// Why [`Machine::probe`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A file of `/proc` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// `/proc/meminfo` has no readable `MemTotal` line.
    #[error("{} has no MemTotal line", path.display())]
    NoMemTotal {
        /// The file.
        path: PathBuf,
    },
}

impl Machine {
    /// Reads this machine's facts: `uname`, `/proc/meminfo` and `/proc/cpuinfo`.
    ///
    /// `os` is what VOLTTRON always reported, `GNU/Linux`, when this program runs on Linux
    /// with glibc (it is also what `uname -o` prints there); `Linux` with another C
    /// library (musl), `Android` on Android, else the kernel name. A machine whose
    /// `/proc/cpuinfo` has no `bogomips` line (some ARM kernels) gets a total of 0, so
    /// any CPU request is refused there.
    pub fn probe() -> Result<Machine, ProbeError> {
        let read = |path: &str| {
            fs::read_to_string(path).map_err(|source| ProbeError::Read {
                path: path.into(),
                source,
            })
        };
        let memory_total_kb = Machine::mem_total_kb(&read(MEMINFO)?)
            .ok_or_else(|| ProbeError::NoMemTotal { path: MEMINFO.into() })?;
        let bogomips_total = Machine::bogomips_total(&read(CPUINFO)?);
        if bogomips_total == 0.0 {
            tracing::warn!("{CPUINFO} reports no BogoMIPS: every CPU request will be refused");
        }
        let uname = rustix::system::uname();
        let text = |s: &std::ffi::CStr| s.to_string_lossy().into_owned();
        let kernel_name = text(uname.sysname());
        Ok(Machine {
            os: os_name(&kernel_name),
            kernel_name,
            kernel_release: text(uname.release()),
            kernel_version: text(uname.version()),
            architecture: text(uname.machine()),
            platform_version: env!("CARGO_PKG_VERSION").to_owned(),
            memory_total_kb,
            bogomips_total,
        })
    }

    /// `MemTotal` of a `/proc/meminfo` text, in kB.
    pub fn mem_total_kb(meminfo: &str) -> Option<u64> {
        meminfo.lines().find_map(|line| {
            let rest = line.strip_prefix("MemTotal:")?;
            let mut words = rest.split_whitespace();
            let n = words.next()?.parse::<u64>().ok()?;
            match words.next() {
                None | Some("kB") => Some(n),
                Some(_) => None,
            }
        })
    }

    /// The sum of the `bogomips` lines (any case: `BogoMIPS` on ARM) of a
    /// `/proc/cpuinfo` text, summed in hundredths so the total is exact to two decimals.
    /// Lines that do not parse are skipped; no line at all gives 0.
    pub fn bogomips_total(cpuinfo: &str) -> f64 {
        let hundredths: u64 = cpuinfo
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("bogomips")
                    .then(|| hundredths(value.trim()))?
            })
            .sum();
        hundredths as f64 / 100.0
    }

    /// `memory.total` in bytes.
    pub fn memory_total_bytes(&self) -> u64 {
        self.memory_total_kb.saturating_mul(1024)
    }

    /// The machine's value of a hard requirement's key.
    pub fn fact(&self, key: HardKey) -> HardValue {
        match key {
            HardKey::KernelName => HardValue::Text(self.kernel_name.clone()),
            HardKey::KernelRelease => HardValue::Text(self.kernel_release.clone()),
            HardKey::KernelVersion => HardValue::Text(self.kernel_version.clone()),
            HardKey::Architecture => HardValue::Text(self.architecture.clone()),
            HardKey::Os => HardValue::Text(self.os.clone()),
            HardKey::PlatformVersion => HardValue::Text(self.platform_version.clone()),
            HardKey::MemoryTotal => HardValue::Integer(self.memory_total_kb),
            HardKey::BogomipsTotal => HardValue::Number(self.bogomips_total),
        }
    }
}

/// `os` for a kernel name, by the C library this program is built for.
fn os_name(kernel_name: &str) -> String {
    if cfg!(target_os = "android") {
        "Android".to_owned()
    } else if cfg!(all(target_os = "linux", target_env = "gnu")) {
        "GNU/Linux".to_owned()
    } else if cfg!(target_os = "linux") {
        "Linux".to_owned()
    } else {
        kernel_name.to_owned()
    }
}

/// `"5192.24"` as 519224; at most two decimals are kept (more are truncated).
fn hundredths(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut cents = 0;
    for (i, b) in frac.bytes().chain(std::iter::repeat(b'0')).take(2).enumerate() {
        cents += u64::from(b - b'0') * if i == 0 { 10 } else { 1 };
    }
    whole.parse::<u64>().ok()?.checked_mul(100)?.checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_is_read_in_kb() {
        let text = "MemTotal:       24684100 kB\nMemFree:        1000 kB\n";
        assert_eq!(Machine::mem_total_kb(text), Some(24_684_100));
        assert_eq!(Machine::mem_total_kb("MemFree: 1 kB\n"), None);
        assert_eq!(Machine::mem_total_kb("MemTotal: lots kB\n"), None);
        assert_eq!(Machine::mem_total_kb("MemTotal: 12 MB\n"), None);
    }

    #[test]
    fn cpuinfo_bogomips_are_summed_exactly_in_any_case() {
        let x86 = "processor\t: 0\nbogomips\t: 5192.24\n\nprocessor\t: 1\nbogomips\t: 5192.24\n";
        assert_eq!(Machine::bogomips_total(x86), 10384.48);
        let arm = "processor : 0\nBogoMIPS : 48.00\nprocessor : 1\nBogoMIPS : 48.00\nbogomips_x : 1\n";
        assert_eq!(Machine::bogomips_total(arm), 96.0);
        assert_eq!(Machine::bogomips_total("processor : 0\n"), 0.0);
        assert_eq!(Machine::bogomips_total("bogomips : n/a\nbogomips : 1.5\n"), 1.5);
    }

    #[test]
    fn hundredths_parse_two_decimals() {
        assert_eq!(hundredths("5192.24"), Some(519_224));
        assert_eq!(hundredths("48"), Some(4_800));
        assert_eq!(hundredths("1.5"), Some(150));
        assert_eq!(hundredths("1.239"), Some(123));
        assert_eq!(hundredths(".5"), None);
        assert_eq!(hundredths("-1"), None);
        assert_eq!(hundredths("1.2x"), None);
    }

    #[test]
    fn hard_keys_round_trip() {
        for key in HardKey::ALL {
            assert_eq!(HardKey::from_key(key.as_str()), Some(key));
            assert_eq!(serde_json::to_value(key).unwrap(), Value::from(key.as_str()));
        }
        assert_eq!(HardKey::from_key("distribution.release"), None);
    }

    #[test]
    fn hard_values_match_by_type() {
        let text = HardValue::Text("GNU/Linux".into());
        assert!(text.matches(&HardValue::Text("GNU/Linux".into())));
        assert!(!text.matches(&HardValue::Text("Linux".into())));
        assert!(!HardValue::Integer(1).matches(&text));
        assert!(HardValue::Number(10384.48).matches(&HardValue::Number(5192.24 + 5192.24)));
        assert!(HardValue::Integer(96).matches(&HardValue::Number(96.0)));
        assert!(!HardValue::Number(96.01).matches(&HardValue::Number(96.0)));
        assert_eq!(text.to_string(), "\"GNU/Linux\"");
    }
}
