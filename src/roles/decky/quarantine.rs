//! The quarantine every capturing service keeps attacker files in (engine.md §2.8): the
//! name `<UTC %Y-%m-%dT%H:%M:%SZ>_<sha256[:12]>_<basename>` and the write into the
//! artifacts directory the engine mounts.
use std::path::Path;

use time::OffsetDateTime;

/// `path`'s last component with only `[A-Za-z0-9._-]`, at most 128 characters, or
/// `upload` when nothing usable is left (the name can never leave the directory).
pub fn basename(path: &str) -> String {
    let name: String = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        "upload".to_owned()
    } else {
        name
    }
}

/// The quarantine name of content with digest `sha` (hex) kept as `name` at `now`;
/// `name` must already be safe ([`basename`] or a service's own id).
pub fn stored_name(now: OffsetDateTime, sha: &str, name: &str) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z_{}_{name}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        &sha[..12.min(sha.len())],
    )
}

/// Writes `content` as `dir/name`, creating `dir` if the engine has not.
pub async fn store(dir: &Path, name: &str, content: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    tokio::fs::write(dir.join(name), content).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_directory() {
        assert_eq!(basename("/tmp/x y/../evil.sh"), "evil.sh");
        assert_eq!(basename("a/.."), "upload");
        assert_eq!(basename(""), "upload");
        assert_eq!(basename("t\u{e9}st;rm"), "t_st_rm");
        let now = OffsetDateTime::from_unix_timestamp(1_764_590_400).expect("valid time");
        assert_eq!(
            stored_name(now, "0123456789abcdef", "x.sh"),
            "2025-12-01T12:00:00Z_0123456789ab_x.sh"
        );
    }
}
