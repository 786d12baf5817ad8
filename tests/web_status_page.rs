//! The operators' status page (`/`, src/web/status.rs) of a real `volttron` process, in a
//! real headless Chromium: the login form (a wrong password, then the right one), the
//! agents table against `vctl status --json` and `vctl peerlist`, and the live tail of a
//! topic prefix showing a `vctl publish`; then the same table served as plain HTML (what a
//! browser with JavaScript off gets) to a client carrying the `Bearer` cookie.
//!
//! Screenshots: `target/test-artifacts/web_status_login_error.png`, `web_status_page.png`.

mod common;

use std::collections::BTreeMap;

use common::browser::Browser;
use common::web::{WEB_CONFIG, access_token, http};
use common::{DEADLINE, Home, pid, remote_agent_binary};
use fantoccini::Locator;

const TEST: &str = "web_status_page";
const PASSWORD: &str = "correct horse battery staple";
const AGENT: &str = "meter.web";
/// The identity `vctl` connects as.
const VCTL: &str = "control.connection";

/// One row of the agents table: its `data-identity`, and its identity, status and health
/// cells' text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct Row {
    key: String,
    identity: String,
    status: String,
    health: String,
}

/// The table's rows as the page shows them now, read in one script (the page's own script
/// replaces the rows every few seconds, so elements found one by one could go stale).
async fn browser_rows(browser: &Browser) -> Vec<Row> {
    let rows = browser
        .client()
        .execute(
            "return Array.from(document.querySelectorAll('#agents tbody tr[data-identity]')).map(function(tr){
               function cell(c){var e=tr.querySelector(c);return e?e.textContent:null;}
               return {key: tr.getAttribute('data-identity'), identity: cell('.identity'),
                       status: cell('.status'), health: cell('.health')};
             });",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(rows).unwrap_or_else(|e| panic!("the table's rows: {e}"))
}

/// The rows of the table in the page's HTML as served (no script run): each
/// `<tr data-identity=..>` with its `identity`, `status` and `health` cells.
fn html_rows(html: &str) -> Vec<Row> {
    let tbody = html
        .split_once("<tbody>")
        .and_then(|(_, rest)| rest.split_once("</tbody>"))
        .map(|(tbody, _)| tbody)
        .unwrap_or_else(|| panic!("no <tbody> in the page: {html}"));
    let cell = |tr: &str, class: &str| -> String {
        let open = format!("class=\"{class}");
        let (_, rest) = tr
            .split_once(&open)
            .unwrap_or_else(|| panic!("no {class} cell in {tr}"));
        let (_, rest) = rest.split_once('>').unwrap();
        rest.split_once("</td>").unwrap().0.to_owned()
    };
    tbody
        .split("<tr ")
        .filter(|tr| !tr.is_empty())
        .map(|tr| {
            let key = tr
                .strip_prefix("data-identity=\"")
                .and_then(|rest| rest.split_once('"'))
                .unwrap_or_else(|| panic!("a row without data-identity: {tr}"))
                .0
                .to_owned();
            Row {
                key,
                identity: cell(tr, "identity"),
                status: cell(tr, "status"),
                health: cell(tr, "health"),
            }
        })
        .collect()
}

/// What the table must say, from `vctl`: each installed agent's status (`running [pid]`)
/// and health as `vctl status --json` gives them; every other connected peer (`vctl
/// peerlist`, less `vctl`'s own connection, [`VCTL`]) as `connected`.
fn expected_rows(home: &Home) -> BTreeMap<String, (String, String)> {
    let mut rows = BTreeMap::new();
    for a in home.status() {
        let identity = a["identity"].as_str().unwrap().to_owned();
        let status = match pid(&a) {
            Some(pid) => format!("running [{pid}]"),
            None => panic!("{identity} is not running: {a}"),
        };
        let health = a["health"].as_str().unwrap_or_default().to_owned();
        rows.insert(identity, (status, health));
    }
    let peers: Vec<String> = serde_json::from_str(&home.ok(&["--json", "peerlist"])).unwrap();
    for peer in peers {
        if peer != VCTL {
            rows.entry(peer)
                .or_insert_with(|| ("connected".to_owned(), String::new()));
        }
    }
    rows
}

/// Checks `rows` against [`expected_rows`]: the same identities (leaving aside `vctl`'s
/// passing connection, there while a `vctl` runs); the installed agents' status and health exactly; the other
/// peers `connected`.
fn check_rows(what: &str, rows: &[Row], expected: &BTreeMap<String, (String, String)>) {
    for r in rows {
        assert_eq!(r.key, r.identity, "{what}: data-identity and the identity cell");
    }
    let shown: BTreeMap<&str, &Row> = rows
        .iter()
        .filter(|r| r.identity != VCTL)
        .map(|r| (r.identity.as_str(), r))
        .collect();
    let shown_ids: Vec<&str> = shown.keys().copied().collect();
    let expected_ids: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(shown_ids, expected_ids, "{what}: the identities");
    for (identity, (status, health)) in expected {
        let row = shown[identity.as_str()];
        assert_eq!(&row.status, status, "{what}: {identity}'s status");
        if status != "connected" {
            assert_eq!(&row.health, health, "{what}: {identity}'s health");
        }
    }
    let agent = shown[AGENT];
    assert!(agent.status.starts_with("running ["), "{what}: {agent:?}");
    assert_eq!(agent.health, "GOOD", "{what}: {agent:?}");
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let field = browser.client().find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(browser: &Browser, css: &str) {
    browser
        .client()
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// Logs in through the form, and waits for the page that follows to have loaded.
async fn log_in(browser: &Browser, user: &str, password: &str) {
    browser.wait_for_text("#login", "Password", DEADLINE).await;
    type_into(browser, "#username", user).await;
    type_into(browser, "#password", password).await;
    click(browser, "#submit").await;
}

#[tokio::test]
async fn the_status_page_shows_the_agents_and_tails_a_topic() {
    let Some(browser) = Browser::start(TEST).await else {
        return;
    };
    let home = Home::with_config(&format!("{WEB_CONFIG}instance-name = webui\n"));
    let platform = home.start_platform();
    let agent = remote_agent_binary();
    home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        AGENT,
        "--start",
    ]);
    home.wait_for(AGENT, "running with health GOOD", |a| {
        pid(a).is_some() && a["health"] == "GOOD"
    });
    home.add_web_user("admin", "admin,vui", PASSWORD);
    let url = home.web_url();

    // Without a token: the login form. A wrong password: the form again, with the error.
    browser.goto(&format!("{url}/")).await;
    assert_eq!(browser.client().title().await.unwrap(), "VOLTTRON login");
    log_in(&browser, "admin", "not the password").await;
    let error = browser
        .wait_for_text("#login-error", "Wrong user name or password", DEADLINE)
        .await;
    assert_eq!(error, "Wrong user name or password.");
    assert!(
        browser.client().find(Locator::Css("#agents")).await.is_err(),
        "no agents table without a login"
    );
    browser.screenshot("web_status_login_error").await;

    // The right password: the table.
    log_in(&browser, "admin", PASSWORD).await;
    browser
        .wait_for_text(
            &format!("#agents tr[data-identity=\"{AGENT}\"] .identity"),
            AGENT,
            DEADLINE,
        )
        .await;
    assert_eq!(browser.client().title().await.unwrap(), "VOLTTRON webui");
    assert_eq!(
        browser
            .client()
            .find(Locator::Css("#instance"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "webui"
    );
    check_rows("the page", &browser_rows(&browser).await, &expected_rows(&home));

    // The live tail: follow a prefix, then see a publication under it appear.
    type_into(&browser, "#prefix", "devices/webui/").await;
    click(&browser, "#tail-start").await;
    browser
        .wait_for_text("#tail-state", "following devices/webui/", DEADLINE)
        .await;
    assert!(
        browser
            .client()
            .find(Locator::Css("#tail li.publication"))
            .await
            .is_err(),
        "nothing in the tail before the publication"
    );
    // Outside the prefix: never shown.
    home.ok(&["publish", "devices/other/all", r#"{"temperature": 1}"#]);
    home.ok(&["publish", "devices/webui/all", r#"{"temperature": 21.5}"#]);
    let line = browser
        .wait_for_text("#tail li.publication", "devices/webui/all", DEADLINE)
        .await;
    assert_eq!(line, r#"devices/webui/all {"temperature":21.5}"#);
    let all: Vec<String> = {
        let mut texts = Vec::new();
        for li in browser
            .client()
            .find_all(Locator::Css("#tail li.publication"))
            .await
            .unwrap()
        {
            texts.push(li.text().await.unwrap());
        }
        texts
    };
    assert_eq!(all, vec![line.clone()], "only the publication under the prefix");
    // The page's table refresh (every 5 s) keeps the rows.
    check_rows(
        "the page, later",
        &browser_rows(&browser).await,
        &expected_rows(&home),
    );
    let png = browser.screenshot(TEST).await;
    assert!(
        std::fs::read(&png).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    browser.quit().await;

    // JavaScript off: the table is in the HTML as served, for a client with the cookie.
    let token = access_token(&url, "admin", PASSWORD);
    let mut response = http()
        .get(format!("{url}/"))
        .header("Cookie", format!("Bearer={token}"))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.body_mut().read_to_string().unwrap();
    check_rows("the served HTML", &html_rows(&html), &expected_rows(&home));
    // Without the cookie: the login form, no table.
    let html = http()
        .get(format!("{url}/"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        html.contains("id=\"login\"") && !html.contains("id=\"agents\""),
        "{html}"
    );

    home.ok(&["shutdown", "--platform"]);
    let status = common::platform_wait(platform);
    assert!(status.success(), "{status:?}");
}
