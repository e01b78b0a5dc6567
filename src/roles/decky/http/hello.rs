//! The TLS ClientHello of an https client, read from the bytes a
//! [`Tap`](super::fingerprint::Tap) recorded under rustls, and its JA3 and JA4
//! fingerprints (the `tls_client_hello` event of engine.md §2.3, which the original
//! left to its sniffer): they tell a scanner or a script from the browser whose
//! User-Agent it sends, and survive a changed source address.
//!
//! JA3 is Salesforce's `version,ciphers,extensions,curves,point_formats` (decimal, GREASE
//! removed) and its MD5; JA4 is FoxIO's `t13d1516h2_<ciphers>_<extensions+sigalgs>`.
//! Parsing is bounded by the recording ([`TAP_CAP`](super::fingerprint::TAP_CAP)) and
//! fails closed: anything malformed gives no fingerprint, never a panic.
use sha2::{Digest, Sha256};

/// What a ClientHello offered, in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` (0x0303 for TLS 1.2 and 1.3 hellos).
    pub legacy_version: u16,
    /// Cipher suites.
    pub ciphers: Vec<u16>,
    /// Extension types.
    pub extensions: Vec<u16>,
    /// supported_groups.
    pub curves: Vec<u16>,
    /// ec_point_formats.
    pub point_formats: Vec<u8>,
    /// signature_algorithms.
    pub sig_algs: Vec<u16>,
    /// supported_versions.
    pub versions: Vec<u16>,
    /// The server name asked for.
    pub sni: Option<String>,
    /// ALPN protocols.
    pub alpn: Vec<Vec<u8>>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn list16(&mut self, len: usize) -> Option<Vec<u16>> {
        let data = self.take(len)?;
        Some(
            data.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect(),
        )
    }
}

/// Whether `v` is a GREASE value (RFC 8701), which fingerprints leave out.
fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

impl ClientHello {
    /// The ClientHello at the start of `bytes` (TLS records as received).
    pub fn parse(mut bytes: &[u8]) -> Option<Self> {
        let mut hs = Vec::new();
        while bytes.len() >= 5 && bytes[0] == 0x16 {
            let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
            hs.extend_from_slice(bytes.get(5..5 + len)?);
            bytes = &bytes[5 + len..];
            if hs.len() >= 4 && hs.len() >= 4 + u24(&hs[1..4]) {
                break;
            }
        }
        if hs.first() != Some(&1) {
            return None;
        }
        let body = hs.get(4..4 + u24(hs.get(1..4)?))?;
        let mut r = Reader(body);
        let mut hello = ClientHello {
            legacy_version: r.u16()?,
            ..ClientHello::default()
        };
        r.take(32)?;
        let sid = usize::from(r.u8()?);
        r.take(sid)?;
        let cipher_len = usize::from(r.u16()?);
        hello.ciphers = r.list16(cipher_len)?;
        let compression = usize::from(r.u8()?);
        r.take(compression)?;
        if r.0.is_empty() {
            return Some(hello);
        }
        let ext_len = usize::from(r.u16()?);
        let mut exts = Reader(r.take(ext_len)?);
        while !exts.0.is_empty() {
            let kind = exts.u16()?;
            let len = usize::from(exts.u16()?);
            let mut data = Reader(exts.take(len)?);
            hello.extensions.push(kind);
            // A malformed extension body only loses its own detail.
            let _ = hello.extension(kind, &mut data);
        }
        Some(hello)
    }

    fn extension(&mut self, kind: u16, d: &mut Reader<'_>) -> Option<()> {
        match kind {
            0x0000 => {
                let _list = d.u16()?;
                if d.u8()? == 0 {
                    let len = usize::from(d.u16()?);
                    self.sni = Some(String::from_utf8_lossy(d.take(len)?).into_owned());
                }
            }
            0x000a => {
                let len = usize::from(d.u16()?);
                self.curves = d.list16(len)?;
            }
            0x000b => {
                let len = usize::from(d.u8()?);
                self.point_formats = d.take(len)?.to_vec();
            }
            0x000d => {
                let len = usize::from(d.u16()?);
                self.sig_algs = d.list16(len)?;
            }
            0x0010 => {
                let len = usize::from(d.u16()?);
                let mut list = Reader(d.take(len)?);
                while !list.0.is_empty() {
                    let n = usize::from(list.u8()?);
                    self.alpn.push(list.take(n)?.to_vec());
                }
            }
            0x002b => {
                let len = usize::from(d.u8()?);
                self.versions = d.list16(len)?;
            }
            _ => {}
        }
        Some(())
    }

    /// The JA3 string (before hashing).
    pub fn ja3_full(&self) -> String {
        fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
            items.map(|v| v.to_string()).collect::<Vec<_>>().join("-")
        }
        let clean = |v: &[u16]| join(v.iter().filter(|x| !grease(**x)));
        format!(
            "{},{},{},{},{}",
            self.legacy_version,
            clean(&self.ciphers),
            clean(&self.extensions),
            clean(&self.curves),
            join(self.point_formats.iter())
        )
    }

    /// JA3: the MD5 of [`ja3_full`](Self::ja3_full), in hex.
    pub fn ja3(&self) -> String {
        format!("{:x}", md5::compute(self.ja3_full()))
    }

    /// FoxIO's JA4 for a hello over TCP.
    pub fn ja4(&self) -> String {
        let version = self
            .versions
            .iter()
            .copied()
            .filter(|v| !grease(*v))
            .max()
            .unwrap_or(self.legacy_version);
        let version = match version {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            _ => "00",
        };
        let ciphers: Vec<u16> = self
            .ciphers
            .iter()
            .copied()
            .filter(|v| !grease(*v))
            .collect();
        let exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|v| !grease(*v))
            .collect();
        let alpn = match self.alpn.first() {
            Some(p) if !p.is_empty() => {
                let (first, last) = (p[0], p[p.len() - 1]);
                if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                    format!("{}{}", char::from(first), char::from(last))
                } else {
                    let h = format!("{first:02x}{last:02x}");
                    format!("{}{}", &h[..1], &h[3..])
                }
            }
            _ => "00".to_owned(),
        };
        let hexes = |v: &mut Vec<u16>| {
            v.sort_unstable();
            v.iter()
                .map(|x| format!("{x:04x}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut sorted_ciphers = ciphers.clone();
        let mut sorted_exts: Vec<u16> = exts
            .iter()
            .copied()
            .filter(|e| *e != 0x0000 && *e != 0x0010)
            .collect();
        let mut c = hexes(&mut sorted_exts);
        let sigs: Vec<String> = self.sig_algs.iter().map(|s| format!("{s:04x}")).collect();
        if !sigs.is_empty() {
            c = format!("{c}_{}", sigs.join(","));
        }
        format!(
            "t{version}{}{:02}{:02}{alpn}_{}_{}",
            if self.sni.is_some() { 'd' } else { 'i' },
            ciphers.len().min(99),
            exts.len().min(99),
            hash12(&hexes(&mut sorted_ciphers)),
            hash12(&c),
        )
    }
}

fn u24(b: &[u8]) -> usize {
    usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2])
}

fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".to_owned();
    }
    hex::encode(&Sha256::digest(s.as_bytes())[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record: GREASE cipher and extension, SNI, ALPN h2, groups,
    /// point formats, signature algorithms and supported_versions TLS 1.3.
    fn record() -> Vec<u8> {
        let ext = |kind: u16, body: &[u8]| {
            let mut e = kind.to_be_bytes().to_vec();
            e.extend_from_slice(&u16::try_from(body.len()).expect("small").to_be_bytes());
            e.extend_from_slice(body);
            e
        };
        let mut exts = Vec::new();
        exts.extend(ext(0x0a0a, &[]));
        exts.extend(ext(0x0000, &[0, 8, 0, 0, 5, b'a', b'.', b'b', b'c', b'd']));
        exts.extend(ext(0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]));
        exts.extend(ext(0x000b, &[1, 0]));
        exts.extend(ext(0x000d, &[0, 4, 0x04, 0x03, 0x08, 0x04]));
        exts.extend(ext(0x0010, &[0, 3, 2, b'h', b'2']));
        exts.extend(ext(0x002b, &[4, 0x3a, 0x3a, 0x03, 0x04]));
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 8, 0x2a, 0x2a, 0x13, 0x01, 0xc0, 0x2b, 0x13, 0x02]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&u16::try_from(exts.len()).expect("small").to_be_bytes());
        body.extend(exts);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&u16::try_from(body.len()).expect("small").to_be_bytes());
        hs.extend(body);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend_from_slice(&u16::try_from(hs.len()).expect("small").to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn ja3_and_ja4_of_a_hello() {
        let hello = ClientHello::parse(&record()).expect("parses");
        assert_eq!(hello.sni.as_deref(), Some("a.bcd"));
        assert_eq!(
            hello.ja3_full(),
            "771,4865-49195-4866,0-10-11-13-16-43,29-23,0"
        );
        assert_eq!(hello.ja3(), format!("{:x}", md5::compute(hello.ja3_full())));
        let ja4 = hello.ja4();
        let want_b = hash12("1301,1302,c02b");
        let want_c = hash12("000a,000b,000d,002b_0403,0804");
        assert_eq!(ja4, format!("t13d0306h2_{want_b}_{want_c}"));
        for cut in 0..record().len() {
            let _ = ClientHello::parse(&record()[..cut]);
        }
        assert_eq!(ClientHello::parse(b"GET / HTTP/1.1\r\n\r\n"), None);
    }
}
