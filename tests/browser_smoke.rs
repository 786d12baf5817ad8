//! The browser harness (`tests/common/browser.rs`) end to end: a page from a tiny HTTP
//! server in this test, whose script changes a text after load, seen in a real headless
//! Chromium, and a screenshot of it saved.

#[path = "common/browser.rs"]
mod browser;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use browser::Browser;

const DEADLINE: Duration = Duration::from_secs(30);

/// The page: `#state` says "loading" until a script, a moment after the load event, makes
/// it say "ready".
const PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>browser smoke</title></head>
<body>
<h1>browser smoke</h1>
<p id="state">loading</p>
<script>
window.addEventListener("load", () => {
  setTimeout(() => { document.getElementById("state").textContent = "ready: set by the script"; }, 200);
});
</script>
</body>
</html>
"#;

/// Serves [`PAGE`] at `/` (anything else is a 404) on a loopback port, from a thread that
/// lives as long as the test process; the page's URL.
fn serve_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // The headers, up to the blank line (a GET has no body).
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let (status, body) = match request_line.split_whitespace().nth(1) {
                Some("/") => ("200 OK", PAGE),
                _ => ("404 Not Found", "not found\n"),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[tokio::test]
async fn chromium_runs_the_pages_script_and_takes_a_screenshot() {
    let test = "browser_smoke";
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let url = serve_page();
    browser.goto(&url).await;
    let text = browser.wait_for_text("#state", "ready", DEADLINE).await;
    assert_eq!(text, "ready: set by the script");
    let title = browser.client().title().await.unwrap();
    assert_eq!(title, "browser smoke");

    let png = browser.screenshot(test).await;
    assert!(
        png.ends_with("target/test-artifacts/browser_smoke.png"),
        "{}",
        png.display()
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    browser.quit().await;
}
