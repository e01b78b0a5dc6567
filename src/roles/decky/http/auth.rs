//! Credentials in HTTP requests: the `Authorization` schemes (Basic, Bearer/Token,
//! Digest) and urlencoded login forms (engine.md §2.3).
//!
//! Everything works on bytes: a Basic password or a form field is kept exactly as the
//! client encoded it, whatever its charset, so the logged secret is byte-exact.
use base64::Engine as _;

use crate::roles::decky::Credential;

/// Form fields that name the user, most specific first (WordPress `log`, phpMyAdmin
/// `pma_username`, then the generic names).
const USER_FIELDS: &[&str] = &[
    "log",
    "pma_username",
    "username",
    "user",
    "login",
    "email",
    "uname",
    "userid",
    "j_username",
];
/// Form fields that carry the password.
const PASSWORD_FIELDS: &[&str] = &[
    "pwd",
    "pma_password",
    "password",
    "pass",
    "passwd",
    "j_password",
    "secret",
];

/// The credential an `Authorization` header value carries, if any.
pub fn from_authorization(value: &[u8]) -> Option<Credential> {
    let text = trim(value);
    let split = text.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = (&text[..split], trim(&text[split + 1..]));
    if scheme.eq_ignore_ascii_case(b"basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':');
        let (user, pass) = match colon {
            Some(i) => (&decoded[..i], &decoded[i + 1..]),
            None => (&decoded[..], &b""[..]),
        };
        Some(Credential::plaintext(Some(user), pass))
    } else if scheme.eq_ignore_ascii_case(b"bearer") || scheme.eq_ignore_ascii_case(b"token") {
        Some(Credential {
            principal: None,
            kind: "http_bearer",
            secret: rest.to_vec(),
        })
    } else if scheme.eq_ignore_ascii_case(b"digest") {
        let response = digest_param(rest, b"response")?;
        Some(Credential {
            principal: digest_param(rest, b"username"),
            kind: "http_digest_md5",
            secret: response,
        })
    } else {
        None
    }
}

/// The credential of an `application/x-www-form-urlencoded` login form, if it has a
/// password field.
pub fn from_form(body: &[u8]) -> Option<Credential> {
    let fields: Vec<(Vec<u8>, Vec<u8>)> = body
        .split(|b| *b == b'&')
        .filter_map(|pair| {
            let eq = pair.iter().position(|b| *b == b'=')?;
            Some((percent_decode(&pair[..eq]), percent_decode(&pair[eq + 1..])))
        })
        .collect();
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n.as_bytes()))
                .map(|(_, v)| v.clone())
        })
    };
    let secret = find(PASSWORD_FIELDS)?;
    let principal = find(USER_FIELDS);
    Some(Credential {
        principal,
        kind: "plaintext",
        secret,
    })
}

/// `+` → space and `%XX` → byte; malformed escapes are kept as written.
fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => match hex_pair(raw[i + 1], raw[i + 2]) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |c: u8| char::from(c).to_digit(16);
    Some(u8::try_from(digit(hi)? * 16 + digit(lo)?).unwrap_or(0))
}

/// The value of `name` in a Digest parameter list (`k="v", k2=v2`), unquoted.
fn digest_param(params: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut rest = params;
    while !rest.is_empty() {
        rest = trim_start(rest);
        let eq = rest.iter().position(|b| *b == b'=')?;
        let key = trim(&rest[..eq]);
        rest = trim_start(&rest[eq + 1..]);
        let value;
        if rest.first() == Some(&b'"') {
            let mut v = Vec::new();
            let mut i = 1;
            while i < rest.len() && rest[i] != b'"' {
                if rest[i] == b'\\' && i + 1 < rest.len() {
                    i += 1;
                }
                v.push(rest[i]);
                i += 1;
            }
            value = v;
            rest = rest.get(i + 1..).unwrap_or_default();
        } else {
            let end = rest.iter().position(|b| *b == b',').unwrap_or(rest.len());
            value = trim(&rest[..end]).to_vec();
            rest = &rest[end..];
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
        rest = trim_start(rest);
        if rest.first() == Some(&b',') {
            rest = &rest[1..];
        }
    }
    None
}

fn trim_start(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[start..]
}

fn trim(b: &[u8]) -> &[u8] {
    let b = trim_start(b);
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_keeps_every_byte_after_the_first_colon() {
        let raw = b"adm:in:p a\"s]s\\\xc3\xb6";
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        let c = from_authorization(header.as_bytes()).expect("credential");
        assert_eq!(c.principal.as_deref(), Some(&b"adm"[..]));
        assert_eq!(c.secret, b"in:p a\"s]s\\\xc3\xb6");
        assert_eq!(c.kind, "plaintext");
        assert!(from_authorization(b"Basic !!!").is_none());
        assert!(from_authorization(b"Negotiate abc").is_none());
    }

    #[test]
    fn bearer_and_digest() {
        let c = from_authorization(b"Bearer eyJ.abc.def").expect("bearer");
        assert_eq!(
            (c.kind, c.secret.as_slice()),
            ("http_bearer", &b"eyJ.abc.def"[..])
        );
        assert!(c.principal.is_none());
        let d = from_authorization(
            br#"Digest username="bob", realm="x", nonce="n,1", uri="/", response="6629fae49393a05397450978507c4ef1", qop=auth"#,
        )
        .expect("digest");
        assert_eq!(d.kind, "http_digest_md5");
        assert_eq!(d.principal.as_deref(), Some(&b"bob"[..]));
        assert_eq!(d.secret, b"6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn forms_are_decoded_to_exact_bytes() {
        let c = from_form(b"log=admin&pwd=p+a%22s%5Ds%5C%C3%B6%ZZ%&wp-submit=Log+In")
            .expect("credential");
        assert_eq!(c.principal.as_deref(), Some(&b"admin"[..]));
        assert_eq!(c.secret, b"p a\"s]s\\\xc3\xb6%ZZ%");
        assert!(from_form(b"q=search&page=2").is_none());
        assert!(from_form(b"").is_none());
    }
}
