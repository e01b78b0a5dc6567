//! The bootstrap script a new worker runs as `curl -fsSL <url> | sudo sh` (swarm.md
//! §10.2, for one binary).
//!
//! POSIX `sh` with `set -eu`: any failing step stops it. It downloads the one-shot
//! payload and the `decnet` binary the master serves, refuses the binary unless its
//! SHA-256 is the one written into the script (the script and the binary come over the
//! same connection, but a truncated or swapped file must not be installed and started as
//! root), installs the release the way the updater manages it
//! (`/opt/decnet/releases/<version>-<sha12>`, `current` → it, `/usr/local/bin/decnet` →
//! `current/decnet`), the bundle (0700 directory, 0600 keys), the INI and the units,
//! then enables the agent when systemd runs. `DECNET_ROOT` installs under another root
//! (images, tests); there, and without systemd, it prints how to start the agent.
//!
//! Every value spliced into the script is checked by the caller to hold only characters
//! that need no quoting (names, host names, hex, base64url), and is single-quoted anyway.

/// What the script is rendered from.
#[derive(Debug, Clone)]
pub struct Script<'a> {
    /// The worker's name.
    pub agent_name: &'a str,
    /// The master as the worker reaches it.
    pub master_host: &'a str,
    /// `<scheme>://<master_host>:<port>/api/v1/swarm/enroll-bundle`.
    pub base_url: &'a str,
    /// The one-time token.
    pub token: &'a str,
    /// SHA-256 (hex) of the binary served under the token.
    pub binary_sha256: &'a str,
    /// The release version.
    pub version: &'a str,
    /// When it was generated (RFC 3339).
    pub generated_at: &'a str,
    /// When the token expires (RFC 3339).
    pub expires_at: &'a str,
}

/// Whether `value` may be spliced into the script: no quote, space or shell syntax.
pub fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:/[]@+".contains(&b))
}

impl Script<'_> {
    /// The script text, or `None` when a value is not plain (see [`is_plain`]).
    pub fn render(&self) -> Option<String> {
        let values = [
            self.agent_name,
            self.master_host,
            self.base_url,
            self.token,
            self.binary_sha256,
            self.version,
            self.generated_at,
            self.expires_at,
        ];
        if !values.iter().all(|v| is_plain(v)) {
            return None;
        }
        Some(
            TEMPLATE
                .replace("@NAME@", self.agent_name)
                .replace("@MASTER@", self.master_host)
                .replace("@BASE@", self.base_url)
                .replace("@TOKEN@", self.token)
                .replace("@SHA@", self.binary_sha256)
                .replace("@VERSION@", self.version)
                .replace("@GENERATED@", self.generated_at)
                .replace("@EXPIRES@", self.expires_at),
        )
    }
}

const TEMPLATE: &str = r#"#!/bin/sh
# decnet worker bootstrap for '@NAME@' (master '@MASTER@').
# Generated @GENERATED@; the download links expire @EXPIRES@ and work once.
set -eu

ROOT="${DECNET_ROOT:-}"
BASE='@BASE@'
TOKEN='@TOKEN@'
SHA='@SHA@'
VERSION='@VERSION@'

say() { printf 'decnet bootstrap: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
    die "run as root: curl -fsSL <this url> | sudo sh"
fi
for tool in curl tar sha256sum install mktemp sed; do
    command -v "$tool" >/dev/null 2>&1 || die "this host needs '$tool'"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

say "downloading the bundle"
curl -fsS --connect-timeout 10 --max-time 60 -o "$work/bundle.tgz" "$BASE/$TOKEN.tgz" \
    || die "the bundle could not be downloaded (already used or expired: enrol the worker again)"
say "downloading decnet $VERSION"
curl -fsS --connect-timeout 10 --max-time 600 -o "$work/decnet" "$BASE/$TOKEN/decnet" \
    || die "the decnet binary could not be downloaded"
echo "$SHA  $work/decnet" | sha256sum -c --status - \
    || die "the downloaded binary's SHA-256 is not $SHA: nothing installed"

mkdir "$work/p"
tar -xzf "$work/bundle.tgz" -C "$work/p" --no-same-owner --no-same-permissions
p="$work/p"

release="$ROOT/opt/decnet/releases/$VERSION-$(printf '%.12s' "$SHA")"
install -d -m 0755 "$release" "$ROOT/usr/local/bin"
install -m 0755 "$work/decnet" "$release/decnet"
ln -sfn "$release" "$ROOT/opt/decnet/current"
ln -sfn "$ROOT/opt/decnet/current/decnet" "$ROOT/usr/local/bin/decnet"

install -d -m 0755 "$ROOT/etc/decnet"
install -d -m 0700 "$ROOT/etc/decnet/agent"
for f in "$p"/etc/decnet/agent/*; do
    install -m 0600 "$f" "$ROOT/etc/decnet/agent/"
done
if [ -d "$p/etc/decnet/updater" ]; then
    install -d -m 0700 "$ROOT/etc/decnet/updater"
    for f in "$p"/etc/decnet/updater/*; do
        install -m 0600 "$f" "$ROOT/etc/decnet/updater/"
    done
fi
sed "s#@ROOT@#$ROOT#g" "$p/etc/decnet/decnet.ini" > "$work/decnet.ini"
install -m 0600 "$work/decnet.ini" "$ROOT/etc/decnet/decnet.ini"
if [ -f "$p/etc/decnet/services.ini" ]; then
    install -m 0644 "$p/etc/decnet/services.ini" "$ROOT/etc/decnet/services.ini"
fi
install -d -m 0755 "$ROOT/var/log/decnet"
install -d -m 0700 "$ROOT/var/lib/decnet"
install -d -m 0755 "$ROOT/etc/systemd/system"
for f in "$p"/etc/systemd/system/*; do
    install -m 0644 "$f" "$ROOT/etc/systemd/system/"
done

if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now decnet-agent.service
    say "decnet $VERSION installed; worker '@NAME@' is starting (journalctl -u decnet-agent)"
else
    say "decnet $VERSION installed under '${ROOT:-/}' for worker '@NAME@'"
    say "no systemd here: start the agent with"
    say "  DECNET_CONFIG=$ROOT/etc/decnet/decnet.ini $ROOT/usr/local/bin/decnet agent"
fi
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(name: &'a str) -> Script<'a> {
        Script {
            agent_name: name,
            master_host: "198.51.100.1",
            base_url: "http://198.51.100.1:8000/api/v1/swarm/enroll-bundle",
            token: "abcDEF_-123",
            binary_sha256: "ab12",
            version: "0.1.0",
            generated_at: "2026-12-02T04:00:00Z",
            expires_at: "2026-12-02T04:05:00Z",
        }
    }

    #[test]
    fn values_are_spliced_only_when_plain() {
        let text = sample("w1").render().unwrap_or_default();
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(text.contains("TOKEN='abcDEF_-123'"));
        assert!(!text.contains("@TOKEN@") && !text.contains("@SHA@"));
        assert!(
            text.contains("sed \"s#@ROOT@#$ROOT#g\""),
            "the INI placeholder stays"
        );
        for bad in ["w1'; rm -rf /", "w 1", "$(id)", "a`b`", ""] {
            assert!(sample(bad).render().is_none(), "{bad:?}");
        }
    }
}
