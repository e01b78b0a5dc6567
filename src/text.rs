//! Small text helpers shared by the roles that handle attacker strings: the honeypots
//! (which emit them) and the master's ingester (which stores them).

/// `bytes` with everything outside printable ASCII (0x20..=0x7e) shown as `?`.
pub fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..=0x7e).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn cap_str(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
