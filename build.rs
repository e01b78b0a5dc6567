//! Stamps the git commit into the binary so `decnet --version` can say which build runs.
use std::path::Path;
use std::process::Command;

/// What `git args…` prints, trimmed, if it succeeds.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=DECNET_GIT_COMMIT={commit}");
    // Ask git where HEAD and the refs live: in a worktree `.git` is a file, and a watched
    // path that does not exist would rerun this script (and rebuild decnet) every time.
    println!("cargo:rerun-if-changed=build.rs");
    for name in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
