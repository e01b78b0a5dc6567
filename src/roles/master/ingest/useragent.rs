//! User-agent classification for the `http_useragent` fingerprint (engine.md §3.5):
//! `browser`, `cli`, `library`, `scanner`, `bot`, `nonstandard` or `empty`, the tool
//! recognised, and the signals that led there.
//!
//! Order matters: a scanner that sends a browser-like string with its own name in it
//! (`Mozilla/5.0 zgrab/0.x`, nuclei's random agents aside) is a scanner, and a crawler
//! announcing itself is a bot before it is a browser. Matching is on lowercase
//! substrings of a bounded prefix, so a hostile header cannot make it slow.
use serde::Serialize;

/// Most bytes of a user agent looked at and kept.
pub const MAX_UA: usize = 512;

/// What a user agent says about its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// One of the seven categories.
    pub category: &'static str,
    /// The tool recognised, if any (`curl`, `nmap`, `python-requests`, …).
    pub tool: Option<&'static str>,
    /// Why: short tags such as `headless`, `control_chars`, `oversized`.
    pub signals: Vec<&'static str>,
}

/// (substring of the lowercase agent, tool name) per category, checked in this order.
const SCANNERS: &[(&str, &str)] = &[
    ("nmap", "nmap"),
    ("masscan", "masscan"),
    ("zgrab", "zgrab"),
    ("nikto", "nikto"),
    ("sqlmap", "sqlmap"),
    ("nuclei", "nuclei"),
    ("gobuster", "gobuster"),
    ("dirbuster", "dirbuster"),
    ("wpscan", "wpscan"),
    ("zmap", "zmap"),
    ("censysinspect", "censys"),
    ("expanse", "expanse"),
    ("nessus", "nessus"),
    ("openvas", "openvas"),
    ("acunetix", "acunetix"),
    ("fuzz faster u fool", "ffuf"),
    ("feroxbuster", "feroxbuster"),
    ("whatweb", "whatweb"),
    ("hydra", "hydra"),
    ("l9explore", "leakix"),
    ("projectdiscovery", "projectdiscovery"),
    ("internet-measurement", "internet-measurement"),
];
const BOTS: &[(&str, &str)] = &[
    ("googlebot", "googlebot"),
    ("bingbot", "bingbot"),
    ("yandexbot", "yandexbot"),
    ("baiduspider", "baiduspider"),
    ("ahrefsbot", "ahrefsbot"),
    ("semrushbot", "semrushbot"),
    ("facebookexternalhit", "facebook"),
    ("applebot", "applebot"),
    ("duckduckbot", "duckduckbot"),
    ("bot", "bot"),
    ("crawler", "crawler"),
    ("spider", "spider"),
];
const CLIS: &[(&str, &str)] = &[
    ("curl/", "curl"),
    ("wget/", "wget"),
    ("httpie/", "httpie"),
    ("powershell", "powershell"),
    ("aria2/", "aria2"),
    ("lynx/", "lynx"),
    ("links (", "links"),
];
const LIBRARIES: &[(&str, &str)] = &[
    ("python-requests", "python-requests"),
    ("python-urllib", "python-urllib"),
    ("python-httpx", "python-httpx"),
    ("aiohttp", "aiohttp"),
    ("go-http-client", "go-http-client"),
    ("okhttp", "okhttp"),
    ("java/", "java"),
    ("apache-httpclient", "apache-httpclient"),
    ("libwww-perl", "libwww-perl"),
    ("axios", "axios"),
    ("node-fetch", "node-fetch"),
    ("undici", "undici"),
    ("guzzlehttp", "guzzle"),
    ("ruby", "ruby"),
    ("reqwest", "reqwest"),
    ("winhttp", "winhttp"),
];
const BROWSERS: &[(&str, &str)] = &[
    ("edg/", "edge"),
    ("opr/", "opera"),
    ("firefox/", "firefox"),
    ("chrome/", "chrome"),
    ("safari/", "safari"),
    ("msie ", "internet-explorer"),
    ("trident/", "internet-explorer"),
];

/// Classifies the user agent `value`.
pub fn classify(value: &str) -> Verdict {
    let mut signals = Vec::new();
    if value.len() > MAX_UA {
        signals.push("oversized");
    }
    if value.chars().any(char::is_control) {
        signals.push("control_chars");
    }
    if !value.is_ascii() {
        signals.push("non_ascii");
    }
    let head = super::clip(value, MAX_UA);
    let lower = head.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return Verdict {
            category: "empty",
            tool: None,
            signals,
        };
    }
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| lower.contains(needle))
            .map(|&(_, tool)| tool)
    };
    let groups: [(&'static str, &[(&str, &'static str)]); 4] = [
        ("scanner", SCANNERS),
        ("bot", BOTS),
        ("cli", CLIS),
        ("library", LIBRARIES),
    ];
    for (category, table) in groups {
        if let Some(tool) = find(table) {
            return Verdict {
                category,
                tool: Some(tool),
                signals,
            };
        }
    }
    if lower.contains("headless") {
        signals.push("headless");
    }
    if lower.starts_with("mozilla/") {
        if let Some(tool) = find(BROWSERS) {
            return Verdict {
                category: "browser",
                tool: Some(tool),
                signals,
            };
        }
        signals.push("mozilla_without_engine");
    }
    Verdict {
        category: "nonstandard",
        tool: None,
        signals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seven_categories() {
        let cases = [
            ("", "empty", None),
            ("   ", "empty", None),
            ("Mozilla/5.0 zgrab/0.x", "scanner", Some("zgrab")),
            (
                "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
                "scanner",
                Some("nmap"),
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "bot",
                Some("googlebot"),
            ),
            ("curl/8.5.0", "cli", Some("curl")),
            ("Wget/1.21.3", "cli", Some("wget")),
            ("python-requests/2.31.0", "library", Some("python-requests")),
            ("Go-http-client/1.1", "library", Some("go-http-client")),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0.0.0 Safari/537.36",
                "browser",
                Some("chrome"),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                "browser",
                Some("firefox"),
            ),
            ("Mozilla/5.0", "nonstandard", None),
            ("xyz", "nonstandard", None),
        ];
        for (ua, category, tool) in cases {
            let v = classify(ua);
            assert_eq!((v.category, v.tool), (category, tool), "{ua:?}");
        }
    }

    #[test]
    fn signals_name_what_is_odd() {
        let v = classify("Mozilla/5.0 HeadlessChrome/120.0 Safari/537.36");
        assert_eq!(v.category, "browser");
        assert!(v.signals.contains(&"headless"));
        let v = classify("a\u{1b}[31m");
        assert!(v.signals.contains(&"control_chars"));
        let v = classify(&"x".repeat(MAX_UA + 1));
        assert!(v.signals.contains(&"oversized"));
    }
}
