//! Execution requirements (`exereqs.json` / `execreqs.json`) and admission against the
//! platform's budget: parsing and its errors, hard requirements, reservations that fit
//! and one that does not, release.

use std::fs;

use volttron::resources::admission::{Admission, Budget, BudgetPolicy, RefusedTerm, Reservation};
use volttron::resources::contract::{
    ALT_FILE_NAME, Contract, ContractError, CpuRequest, FILE_NAME, HardKey, HardRequirement, HardValue,
    Machine, Section,
};

/// 6000 BogoMIPS (budget 4800), 10 000 kB = 10 240 000 bytes (budget 5 120 000).
fn machine() -> Machine {
    Machine {
        kernel_name: "Linux".into(),
        kernel_release: "6.8.0-45-generic".into(),
        kernel_version: "#45-Ubuntu SMP PREEMPT_DYNAMIC".into(),
        architecture: "x86_64".into(),
        os: "GNU/Linux".into(),
        platform_version: "0.1.0".into(),
        memory_total_kb: 10_000,
        bogomips_total: 6000.0,
    }
}

fn parse(text: &str) -> Result<Contract, ContractError> {
    Contract::parse(text, "agent/exereqs.json")
}

fn contract(cpu: serde_json::Value, memory: u64) -> Contract {
    let text = serde_json::json!({
        "requirements": {"cpu.bogomips": cpu, "memory.soft_limit_in_bytes": memory}
    });
    parse(&text.to_string()).unwrap()
}

// ---- parsing ----

#[test]
fn parses_volttrons_example() {
    let c = parse(
        r#"{ "requirements": { "cpu.bogomips": 100, "memory.soft_limit_in_bytes": 2000000 },
             "hard_requirements": { "os": "GNU/Linux", "memory.total": 2064328 } }"#,
    )
    .unwrap();
    assert_eq!(c.soft.cpu, Some(CpuRequest::Mips(100)));
    assert_eq!(c.soft.memory_soft_limit, Some(2_000_000));
    assert_eq!(
        c.hard,
        vec![
            HardRequirement {
                key: HardKey::Os,
                value: HardValue::Text("GNU/Linux".into())
            },
            HardRequirement {
                key: HardKey::MemoryTotal,
                value: HardValue::Integer(2_064_328)
            },
        ]
    );
}

#[test]
fn parses_every_hard_key() {
    let c = parse(
        r##"{"requirements": {}, "hard_requirements": {
            "kernel.name": "Linux", "kernel.release": "6.8.0-45-generic",
            "kernel.version": "#45-Ubuntu SMP PREEMPT_DYNAMIC", "architecture": "x86_64",
            "os": "GNU/Linux", "platform.version": "0.1.0", "memory.total": 10000,
            "bogomips.total": 6000.00 }}"##,
    )
    .unwrap();
    let keys: Vec<HardKey> = c.hard.iter().map(|r| r.key).collect();
    assert_eq!(keys, HardKey::ALL);
    assert_eq!(c.soft, Default::default());
    assert!(c.check_hard(&machine()).is_ok());
}

#[test]
fn empty_requirements_reserve_nothing() {
    let c = parse(r#"{"requirements": {}}"#).unwrap();
    assert!(c.is_empty());
    assert!(Reservation::for_contract(&c, &machine()).is_empty());
}

#[test]
fn cpu_integer_is_mips_and_fraction_is_a_share_of_the_total() {
    let m = machine();
    let mips = contract(250.into(), 0);
    assert_eq!(mips.soft.cpu, Some(CpuRequest::Mips(250)));
    assert_eq!(Reservation::for_contract(&mips, &m).cpu_mips, 250.0);

    let share = contract(0.25.into(), 0);
    assert_eq!(share.soft.cpu, Some(CpuRequest::Fraction(0.25)));
    assert_eq!(Reservation::for_contract(&share, &m).cpu_mips, 1500.0);

    // An integral float is the integer; 1 is the smallest MIPS request.
    assert_eq!(contract(100.0.into(), 0).soft.cpu, Some(CpuRequest::Mips(100)));
    assert_eq!(contract(1.into(), 0).soft.cpu, Some(CpuRequest::Mips(1)));
}

#[test]
fn invalid_json_names_line_and_column() {
    let err = parse("{\n  \"requirements\": {,}\n}").unwrap_err();
    assert!(
        matches!(
            err,
            ContractError::Json {
                line: 2,
                column: 20,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "agent/exereqs.json: invalid JSON at line 2, column 20: key must be a string"
    );
}

#[test]
fn missing_requirements_is_an_error() {
    let err = parse(r#"{"hard_requirements": {"os": "GNU/Linux"}}"#).unwrap_err();
    assert!(matches!(err, ContractError::MissingRequirements { .. }));
    assert_eq!(
        err.to_string(),
        r#"agent/exereqs.json: the "requirements" object is missing (it may be empty: "requirements": {})"#
    );
    assert!(matches!(
        parse("{}").unwrap_err(),
        ContractError::MissingRequirements { .. }
    ));
}

#[test]
fn unknown_keys_are_named_with_their_section() {
    let err = parse(r#"{"requirements": {"cpu.shares": 1024}}"#).unwrap_err();
    assert!(
        matches!(&err, ContractError::UnknownKey { key, section: Section::Requirements, .. } if key == "cpu.shares")
    );
    assert_eq!(
        err.to_string(),
        r#"agent/exereqs.json: unknown key "cpu.shares" in "requirements" (known: cpu.bogomips, memory.soft_limit_in_bytes)"#
    );

    let err =
        parse(r#"{"requirements": {}, "hard_requirements": {"distribution.release": "22.04"}}"#).unwrap_err();
    assert!(matches!(
        &err,
        ContractError::UnknownKey {
            section: Section::HardRequirements,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "agent/exereqs.json: unknown key \"distribution.release\" in \"hard_requirements\" (known: kernel.name, \
         kernel.release, kernel.version, architecture, os, platform.version, memory.total, bogomips.total)"
    );

    let err = parse(r#"{"requirements": {}, "hard_requirement": {}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"agent/exereqs.json: unknown key "hard_requirement" in the top level (known: requirements, hard_requirements)"#
    );
}

#[test]
fn wrong_types_name_expected_and_found() {
    let cases = [
        (
            "[]",
            "agent/exereqs.json: the document must be an object, found an array",
        ),
        (
            r#"{"requirements": null}"#,
            r#"agent/exereqs.json: "requirements" must be an object, found null"#,
        ),
        (
            r#"{"requirements": {}, "hard_requirements": []}"#,
            r#"agent/exereqs.json: "hard_requirements" must be an object, found an array"#,
        ),
        (
            r#"{"requirements": {"cpu.bogomips": "100"}}"#,
            r#"agent/exereqs.json: "cpu.bogomips" must be a number (MIPS, or a fraction of the total), found a string"#,
        ),
        (
            r#"{"requirements": {"memory.soft_limit_in_bytes": 2.5e6}}"#,
            r#"agent/exereqs.json: "memory.soft_limit_in_bytes" must be an integer number of bytes, found a floating-point number"#,
        ),
        (
            r#"{"requirements": {}, "hard_requirements": {"architecture": 64}}"#,
            r#"agent/exereqs.json: "architecture" must be a string, found an integer"#,
        ),
        (
            r#"{"requirements": {}, "hard_requirements": {"memory.total": "2064328"}}"#,
            r#"agent/exereqs.json: "memory.total" must be an integer (kB, as MemTotal in /proc/meminfo), found a string"#,
        ),
        (
            r#"{"requirements": {}, "hard_requirements": {"bogomips.total": true}}"#,
            r#"agent/exereqs.json: "bogomips.total" must be a number, found a boolean"#,
        ),
    ];
    for (text, message) in cases {
        let err = parse(text).unwrap_err();
        assert!(matches!(err, ContractError::WrongType { .. }), "{text}: {err:?}");
        assert_eq!(err.to_string(), message, "{text}");
    }
}

#[test]
fn out_of_range_values_name_the_allowed_range() {
    let cpu = "an integer >= 1 (MIPS) or a fraction 0 < N < 1 of the total BogoMIPS";
    let cases = [
        (
            r#"{"cpu.bogomips": 0}"#,
            format!(r#""cpu.bogomips" is 0, outside the allowed range: {cpu}"#),
        ),
        (
            r#"{"cpu.bogomips": -5}"#,
            format!(r#""cpu.bogomips" is -5, outside the allowed range: {cpu}"#),
        ),
        (
            r#"{"cpu.bogomips": 0.0}"#,
            format!(r#""cpu.bogomips" is 0.0, outside the allowed range: {cpu}"#),
        ),
        (
            r#"{"cpu.bogomips": 1.5}"#,
            format!(r#""cpu.bogomips" is 1.5, outside the allowed range: {cpu}"#),
        ),
        (
            r#"{"cpu.bogomips": -0.5}"#,
            format!(r#""cpu.bogomips" is -0.5, outside the allowed range: {cpu}"#),
        ),
        (
            r#"{"memory.soft_limit_in_bytes": -1}"#,
            r#""memory.soft_limit_in_bytes" is -1, outside the allowed range: 0 or more bytes"#.to_owned(),
        ),
    ];
    for (requirements, message) in cases {
        let err = parse(&format!(r#"{{"requirements": {requirements}}}"#)).unwrap_err();
        assert!(
            matches!(err, ContractError::OutOfRange { .. }),
            "{requirements}: {err:?}"
        );
        assert_eq!(err.to_string(), format!("agent/exereqs.json: {message}"));
    }
    let err = parse(r#"{"requirements": {}, "hard_requirements": {"memory.total": -1}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"agent/exereqs.json: "memory.total" is -1, outside the allowed range: 0 kB or more"#
    );
}

#[test]
fn parsing_never_panics_on_odd_input() {
    for text in [
        "",
        "null",
        "42",
        "\"x\"",
        "{\"requirements\": {}} trailing",
        "\u{feff}{}",
        "{\"requirements\": []}",
    ] {
        assert!(parse(text).is_err(), "{text:?}");
    }
    let huge = r#"{"requirements": {"cpu.bogomips": 1e400}}"#;
    assert!(parse(huge).is_err());
}

// ---- finding the file ----

#[test]
fn finds_either_spelling() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Contract::find(dir.path()).unwrap().is_none());

    let text = r#"{"requirements": {"cpu.bogomips": 100}}"#;
    fs::write(dir.path().join(FILE_NAME), text).unwrap();
    let (path, c) = Contract::find(dir.path()).unwrap().unwrap();
    assert_eq!(path, dir.path().join("exereqs.json"));
    assert_eq!(c.soft.cpu, Some(CpuRequest::Mips(100)));

    let other = tempfile::tempdir().unwrap();
    fs::write(other.path().join(ALT_FILE_NAME), text).unwrap();
    let (path, c) = Contract::find(other.path()).unwrap().unwrap();
    assert_eq!(path, other.path().join("execreqs.json"));
    assert_eq!(c.soft.cpu, Some(CpuRequest::Mips(100)));
}

#[test]
fn both_spellings_are_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(FILE_NAME), r#"{"requirements": {}}"#).unwrap();
    fs::write(dir.path().join(ALT_FILE_NAME), r#"{"requirements": {}}"#).unwrap();
    let err = Contract::find(dir.path()).unwrap_err();
    assert!(matches!(err, ContractError::BothSpellings { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{} has both exereqs.json and execreqs.json: keep one of them",
            dir.path().display()
        )
    );
}

#[test]
fn a_bad_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(ALT_FILE_NAME), r#"{"requirements": {"cpu": 1}}"#).unwrap();
    let err = Contract::find(dir.path()).unwrap_err();
    let path = dir.path().join(ALT_FILE_NAME);
    assert!(
        err.to_string()
            .starts_with(&format!("{}: unknown key \"cpu\"", path.display())),
        "{err}"
    );
}

// ---- hard requirements ----

#[test]
fn hard_mismatch_is_refused_naming_required_and_actual() {
    let c =
        parse(r#"{"requirements": {}, "hard_requirements": {"architecture": "sparc", "os": "GNU/Linux"}}"#)
            .unwrap();
    let refusal = c.check_hard(&machine()).unwrap_err();
    assert_eq!(
        refusal.terms,
        vec![RefusedTerm::Hard {
            key: HardKey::Architecture,
            required: HardValue::Text("sparc".into()),
            actual: HardValue::Text("x86_64".into()),
        }]
    );
    assert_eq!(
        refusal.to_string(),
        r#"contract refused: architecture requires "sparc", this machine has "x86_64""#
    );

    let mut ledger = Admission::new(&machine(), BudgetPolicy::default());
    let refusal = ledger.admit("sparcy", &c, &machine()).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        r#"cannot start 'sparcy': architecture requires "sparc", this machine has "x86_64""#
    );
    assert_eq!(ledger.reserved("sparcy"), None);
}

#[test]
fn every_hard_mismatch_is_listed_and_checked_before_the_budget() {
    let c = parse(
        r#"{"requirements": {"cpu.bogomips": 999999},
            "hard_requirements": {"memory.total": 2064328, "bogomips.total": 6000.5, "kernel.name": "Linux"}}"#,
    )
    .unwrap();
    let mut ledger = Admission::new(&machine(), BudgetPolicy::default());
    let refusal = ledger.admit("old", &c, &machine()).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "cannot start 'old': memory.total requires 2064328, this machine has 10000; \
         bogomips.total requires 6000.5, this machine has 6000"
    );
}

// ---- admission ----

#[test]
fn three_agents_fit_a_fourth_is_refused_and_a_release_frees_room() {
    let m = machine();
    let mut ledger = Admission::new(&m, BudgetPolicy::default());
    assert_eq!(
        ledger.budget(),
        Budget {
            cpu_mips: 4800.0,
            memory_bytes: 5_120_000
        }
    );

    let a = ledger.admit("a", &contract(1000.into(), 1_000_000), &m).unwrap();
    assert_eq!(
        a,
        Reservation {
            cpu_mips: 1000.0,
            memory_bytes: 1_000_000
        }
    );
    let b = ledger.admit("b", &contract(0.3.into(), 1_500_000), &m).unwrap();
    assert_eq!(
        b,
        Reservation {
            cpu_mips: 1800.0,
            memory_bytes: 1_500_000
        }
    );
    ledger.admit("c", &contract(800.into(), 1_000_000), &m).unwrap();
    assert_eq!(
        ledger.reserved_total(),
        Reservation {
            cpu_mips: 3600.0,
            memory_bytes: 3_500_000
        }
    );
    assert_eq!(
        ledger.available(),
        Budget {
            cpu_mips: 1200.0,
            memory_bytes: 1_620_000
        }
    );

    let hog = contract(3000.into(), 1_000_000);
    let refusal = ledger.admit("hog", &hog, &m).unwrap_err();
    assert_eq!(
        refusal.terms,
        vec![RefusedTerm::Cpu {
            request: CpuRequest::Mips(3000),
            requested_mips: 3000.0,
            available_mips: 1200.0,
            budget_mips: 4800.0,
            total_mips: 6000.0,
            budget_fraction: 0.8,
        }]
    );
    assert_eq!(
        refusal.to_string(),
        "cannot start 'hog': cpu.bogomips requests 3000 MIPS, 1200 of 4800 available (budget 80% of 6000)"
    );
    assert_eq!(ledger.reserved("hog"), None);
    assert_eq!(
        ledger.available(),
        Budget {
            cpu_mips: 1200.0,
            memory_bytes: 1_620_000
        }
    );

    // Stopping b frees 1800 MIPS: 3000 of 4800 are available, exactly what hog asks.
    assert_eq!(ledger.release("b"), Some(b));
    assert_eq!(ledger.release("b"), None);
    assert_eq!(
        ledger.available(),
        Budget {
            cpu_mips: 3000.0,
            memory_bytes: 3_120_000
        }
    );
    let r = ledger.admit("hog", &hog, &m).unwrap();
    assert_eq!(r.cpu_mips, 3000.0);
    assert_eq!(
        ledger.available(),
        Budget {
            cpu_mips: 0.0,
            memory_bytes: 2_120_000
        }
    );
}

#[test]
fn memory_refusal_names_bytes() {
    let m = machine();
    let mut ledger = Admission::new(&m, BudgetPolicy::default());
    ledger.admit("a", &contract(1.into(), 5_000_000), &m).unwrap();
    let refusal = ledger.admit("b", &contract(0.5.into(), 200_000), &m).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "cannot start 'b': memory.soft_limit_in_bytes requests 200000 bytes, 120000 of 5120000 available \
         (budget 50% of 10240000)"
    );
}

#[test]
fn both_soft_terms_are_reported_and_a_fraction_shows_its_arithmetic() {
    let m = machine();
    let mut ledger = Admission::new(&m, BudgetPolicy::default());
    let refusal = ledger
        .admit("big", &contract(0.9.into(), 6_000_000), &m)
        .unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "cannot start 'big': cpu.bogomips requests 0.9 × 6000 = 5400 MIPS, 4800 of 4800 available \
         (budget 80% of 6000); memory.soft_limit_in_bytes requests 6000000 bytes, 5120000 of 5120000 \
         available (budget 50% of 10240000)"
    );
}

#[test]
fn readmitting_replaces_the_reservation() {
    let m = machine();
    let mut ledger = Admission::new(&m, BudgetPolicy::default());
    ledger.admit("a", &contract(4000.into(), 0), &m).unwrap();
    // Counting its old reservation, 4000 + 4000 would not fit; replacing it does.
    ledger.admit("a", &contract(4000.into(), 0), &m).unwrap();
    assert_eq!(ledger.reserved_total().cpu_mips, 4000.0);
    ledger.admit("a", &contract(4800.into(), 0), &m).unwrap();
    assert_eq!(ledger.reserved("a").unwrap().cpu_mips, 4800.0);
    // A refused re-admission leaves the old reservation.
    assert!(ledger.admit("a", &contract(4801.into(), 0), &m).is_err());
    assert_eq!(ledger.reserved("a").unwrap().cpu_mips, 4800.0);
}

#[test]
fn check_reserves_nothing() {
    let m = machine();
    let ledger = Admission::new(&m, BudgetPolicy::default());
    let r = ledger.check("a", &contract(100.into(), 100), &m).unwrap();
    assert_eq!(
        r,
        Reservation {
            cpu_mips: 100.0,
            memory_bytes: 100
        }
    );
    assert_eq!(ledger.reserved("a"), None);
    assert!(ledger.check("a", &contract(5000.into(), 100), &m).is_err());
}

#[test]
fn a_custom_policy_changes_the_budget() {
    let m = machine();
    let policy = BudgetPolicy::new(0.5, 0.25).unwrap();
    let mut ledger = Admission::new(&m, policy);
    assert_eq!(
        ledger.budget(),
        Budget {
            cpu_mips: 3000.0,
            memory_bytes: 2_560_000
        }
    );
    let refusal = ledger.admit("x", &contract(3001.into(), 0), &m).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "cannot start 'x': cpu.bogomips requests 3001 MIPS, 3000 of 3000 available (budget 50% of 6000)"
    );
}

#[test]
fn agents_without_a_contract_reserve_nothing() {
    let m = machine();
    let mut ledger = Admission::new(&m, BudgetPolicy::default());
    ledger
        .admit("full", &contract(4800.into(), 5_120_000), &m)
        .unwrap();
    let r = ledger.admit("free", &Contract::default(), &m).unwrap();
    assert!(r.is_empty());
    assert_eq!(
        ledger.reservations().map(|(id, _)| id).collect::<Vec<_>>(),
        ["free", "full"]
    );
}

#[test]
fn summary_serializes_for_rpc() {
    let m = machine();
    let mut ledger = Admission::new(&m, BudgetPolicy::default());
    ledger.admit("a", &contract(1000.into(), 1_000_000), &m).unwrap();
    let summary = ledger.summary();
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "policy": {"cpu_fraction": 0.8, "memory_fraction": 0.5},
            "total_mips": 6000.0,
            "total_memory_bytes": 10_240_000,
            "budget": {"cpu_mips": 4800.0, "memory_bytes": 5_120_000},
            "reserved": {"cpu_mips": 1000.0, "memory_bytes": 1_000_000},
            "available": {"cpu_mips": 3800.0, "memory_bytes": 4_120_000},
            "agents": {"a": {"cpu_mips": 1000.0, "memory_bytes": 1_000_000}},
        })
    );
    let back: volttron::resources::admission::AdmissionSummary = serde_json::from_value(json).unwrap();
    assert_eq!(back, summary);

    let refusal = ledger.admit("hog", &contract(5000.into(), 0), &m).unwrap_err();
    let json = serde_json::to_value(&refusal).unwrap();
    assert_eq!(json["agent"], "hog");
    assert_eq!(json["terms"][0]["term"], "cpu");
    assert_eq!(json["terms"][0]["request"], serde_json::json!({"mips": 5000}));
}

// ---- this machine ----

#[cfg(target_os = "linux")]
#[test]
fn probing_this_machine_gives_plausible_facts() {
    let m = Machine::probe().unwrap();
    assert_eq!(m.kernel_name, "Linux");
    assert!(!m.kernel_release.is_empty());
    assert!(!m.kernel_version.is_empty());
    assert_eq!(
        m.architecture,
        std::env::consts::ARCH,
        "uname machine on a common architecture"
    );
    if cfg!(target_env = "gnu") {
        assert_eq!(m.os, "GNU/Linux");
    }
    assert_eq!(m.platform_version, env!("CARGO_PKG_VERSION"));
    // Between 64 MB and 64 TB.
    assert!(
        (64 * 1024..64 * 1024 * 1024 * 1024).contains(&m.memory_total_kb),
        "{m:?}"
    );
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:")).unwrap();
    let total = m.memory_total_kb.to_string();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["MemTotal:", total.as_str(), "kB"]
    );
    if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
        assert!(m.bogomips_total >= 100.0, "{m:?}");
    }

    // Its own facts satisfy a contract that names all of them, and the default budget
    // is 80% / 50% of them.
    let hard: serde_json::Map<String, serde_json::Value> = HardKey::ALL
        .iter()
        .map(|k| (k.as_str().to_owned(), serde_json::to_value(m.fact(*k)).unwrap()))
        .collect();
    let text =
        serde_json::json!({"requirements": {"cpu.bogomips": 0.1}, "hard_requirements": hard}).to_string();
    let c = Contract::parse(&text, "probe").unwrap();
    assert!(c.check_hard(&m).is_ok());
    let budget = Budget::new(&m, BudgetPolicy::default());
    assert!((budget.cpu_mips - m.bogomips_total * 0.8).abs() < 1e-6);
    assert_eq!(budget.memory_bytes, m.memory_total_kb * 1024 / 2);
}
