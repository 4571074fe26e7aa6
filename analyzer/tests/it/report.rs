//! The analysts' report: written by `run`, opened in headless Chromium (Debian `chromium`, which
//! `.ci/setup` installs), driven over the DevTools protocol on 127.0.0.1.

use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use cablewatch_analyzer::{
    fusion::Class,
    run::{RunOptions, run},
};
use serde_json::{Value, json};

/// The Chromium to use: `CABLEWATCH_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CABLEWATCH_CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the report test needs Chromium: run .ci/setup (it installs Debian's chromium), or set CABLEWATCH_CHROMIUM to a Chromium binary"
    );
}

/// A headless Chromium on 127.0.0.1 with one page attached over the DevTools protocol.
struct Browser {
    child: Child,
    socket: tungstenite::WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Console errors, uncaught exceptions and failed loads, as text.
    errors: Vec<String>,
    _profile: tempfile::TempDir,
}

/// Everything one page load took at most.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

impl Browser {
    fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // Chromium prints where its DevTools endpoint listens.
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut url = None;
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(at) = line.find("ws://") {
                url = Some(line[at..].trim().to_owned());
                break;
            }
        }
        let url = url.expect("chromium printed no DevTools address");
        let address = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        assert!(address.starts_with("127.0.0.1:"), "{address}");
        let stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(PAGE_TIMEOUT)).unwrap();
        let (socket, _) = tungstenite::client(url.as_str(), stream).unwrap();
        let mut browser = Browser {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            errors: Vec::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}));
        }
        browser
    }

    /// Sends a command (to the page once attached) and returns its result; events read meanwhile
    /// are recorded.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(tungstenite::Message::text(message.to_string()))
            .unwrap();
        loop {
            let reply = self.next_message();
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
            self.record(&reply);
        }
    }

    fn next_message(&mut self) -> Value {
        loop {
            match self.socket.read().expect("DevTools message") {
                tungstenite::Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                tungstenite::Message::Close(_) => panic!("chromium closed the DevTools connection"),
                _ => {}
            }
        }
    }

    /// Notes an event that is an error.
    fn record(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled")
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                self.errors.push(format!("console: {}", params["args"]));
            }
            Some("Runtime.exceptionThrown") => {
                self.errors
                    .push(format!("exception: {}", params["exceptionDetails"]));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == json!("error") => {
                self.errors.push(format!(
                    "log: {} {}",
                    params["entry"]["text"], params["entry"]["url"]
                ));
            }
            _ => {}
        }
    }

    /// Opens `file` and waits for its load event (every image loaded or failed).
    fn open(&mut self, file: &Path) {
        let url = format!("file://{}", file.display());
        self.call("Page.navigate", json!({"url": url}));
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "{url} did not load");
            let event = self.next_message();
            if event["method"] == json!("Page.loadEventFired") {
                return;
            }
            self.record(&event);
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        result["result"]["value"].clone()
    }

    /// Per image of the open page: its source and whether it loaded and decoded.
    fn images(&mut self) -> Vec<(String, bool)> {
        let value = self.eval(
            "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])",
        );
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| (pair[0].as_str().unwrap().to_owned(), pair[1].as_bool().unwrap()))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three days of the tiny plant with a 0.3 dB tap and an earthquake, analysed with the report on.
/// The report lists every finding, the tap first (high severity); each finding's page has its plots;
/// in Chromium the findings table and every image load with no console error; a plot removed from
/// disk is caught.
#[test]
fn the_report_lists_every_finding_and_loads_in_chromium() {
    let s = crate::run::tap_and_earthquake();
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        report: true,
        svg: true,
        ..crate::run::write_tiny(&s, 3, dir.path())
    };
    let report = run(&options, |_| {}).unwrap();
    let summary = report.report.clone().expect("run wrote a report");
    assert_eq!((summary.drawn, summary.reused), (report.findings.len(), 0));
    let index = summary.index;
    assert_eq!(index, options.out.join("report/index.html"));
    let tap = report
        .findings
        .iter()
        .find(|f| f.class == Class::TapLike && !f.explained)
        .expect("the tap is found");
    let html = std::fs::read_to_string(&index).unwrap();
    // Findings by severity: the unexplained tap is the first row.
    let first_row = html.find("<tbody>").map(|at| &html[at..]).unwrap();
    let first_link = first_row.find(".html\">").unwrap();
    assert!(
        first_row[..first_link].ends_with(&tap.id),
        "the tap {} should be listed first",
        tap.id
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external requests"
    );
    // Each finding's page; the tap's has all four plots, at the plot size.
    for f in &report.findings {
        assert!(
            html.contains(&format!("href=\"{}.html\"", f.id)),
            "{} not linked",
            f.id
        );
        assert!(options.out.join(format!("report/{}.html", f.id)).is_file());
    }
    let page_html = std::fs::read_to_string(options.out.join(format!("report/{}.html", tap.id))).unwrap();
    for kind in ["q", "span", "sop", "latency"] {
        let png = options.out.join(format!("report/plots/{}-{kind}.png", tap.id));
        let image = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert_eq!((image.width(), image.height()), cablewatch_analyzer::plot::SIZE);
        // Asked for: the same figure as SVG, with its title as text, linked from the page.
        let svg = format!("{}-{kind}.svg", tap.id);
        let text = std::fs::read_to_string(options.out.join("report/plots").join(&svg)).unwrap();
        assert!(text.contains(&tap.id), "{svg} has no title");
        assert!(
            page_html.contains(&format!("href=\"plots/{svg}\"")),
            "{svg} not linked"
        );
    }

    let mut browser = Browser::start();
    browser.open(&index);
    let rows = browser.eval("document.querySelectorAll('#findings tbody tr').length");
    assert_eq!(rows, json!(report.findings.len()));
    let images = browser.images();
    assert!(images.len() >= 2, "timeline and heat map: {images:?}");
    assert!(images.iter().all(|(_, ok)| *ok), "{images:?}");
    let page = options.out.join(format!("report/{}.html", tap.id));
    browser.open(&page);
    let images = browser.images();
    assert_eq!(images.len(), 4, "{images:?}");
    assert!(images.iter().all(|(_, ok)| *ok), "{images:?}");
    let explanations = browser.eval("document.querySelectorAll('td.no').length");
    assert_eq!(
        explanations,
        json!(tap.explanations.iter().filter(|h| !h.supported).count()),
        "every hypothesis but the tap's unsupported"
    );
    assert!(browser.errors.is_empty(), "{:#?}", browser.errors);

    // The check can fail: a plot missing from disk is a broken image and a failed load.
    std::fs::remove_file(options.out.join(format!("report/plots/{}-sop.png", tap.id))).unwrap();
    browser.open(&page);
    let images = browser.images();
    assert!(
        images.iter().any(|(src, ok)| src.ends_with("-sop.png") && !ok),
        "{images:?}"
    );
    assert!(!browser.errors.is_empty(), "the failed load is reported");
}

/// A second run into the same directory keeps the plots of unchanged findings whose figures read
/// only data the last report had, redraws a finding whose plot went missing, and removes the pages
/// and plots of findings that are gone.
#[test]
fn a_second_report_keeps_unchanged_plots_and_drops_stale_ones() {
    let mut s = crate::run::tap_and_earthquake();
    // Long enough after the tap (hour 30) for its figures' reach (12 h window and 2 days of Q).
    s.days = 6.0;
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        report: true,
        ..crate::run::write_tiny(&s, 3, dir.path())
    };
    let first = run(&options, |_| {}).unwrap();
    let n = first.findings.len();
    assert_eq!(first.report.as_ref().map(|r| (r.drawn, r.reused)), Some((n, 0)));
    let tap = first
        .findings
        .iter()
        .find(|f| f.class == Class::TapLike && !f.explained)
        .expect("the tap is found")
        .clone();
    let plots = options.out.join("report/plots");
    let q = plots.join(format!("{}-q.png", tap.id));
    let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let q_time = modified(&q);
    // Leftovers of a finding that no longer exists.
    std::fs::write(plots.join("F9999-q.png"), b"old").unwrap();
    std::fs::write(options.out.join("report/F9999.html"), b"old").unwrap();

    let second = run(&options, |_| {}).unwrap();
    assert_eq!(second.findings, first.findings);
    let r = second.report.clone().unwrap();
    assert_eq!(r.drawn + r.reused, n);
    assert!(r.reused >= 1, "the tap's plots are kept: {r:?}");
    assert_eq!(modified(&q), q_time, "kept, not redrawn");
    assert!(!plots.join("F9999-q.png").exists(), "stale plot removed");
    assert!(
        !options.out.join("report/F9999.html").exists(),
        "stale page removed"
    );

    std::fs::remove_file(&q).unwrap();
    let third = run(&options, |_| {}).unwrap();
    let r3 = third.report.unwrap();
    assert_eq!(r3.reused, r.reused - 1, "the tap is redrawn");
    assert!(q.is_file());

    // Without the report, the one beside the findings is kept but said to be older.
    let mut stages = Vec::new();
    let quiet = RunOptions {
        report: false,
        ..options.clone()
    };
    let fourth = run(&quiet, |p| {
        if let cablewatch_analyzer::run::Progress::Stage(text) = p {
            stages.push(text.to_owned());
        }
    })
    .unwrap();
    assert!(fourth.report.is_none());
    assert!(stages.iter().any(|s| s.contains("earlier run")), "{stages:?}");
    assert!(q.is_file(), "kept");
}
