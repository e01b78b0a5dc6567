//! The RSA key pair MySQL 8.0 uses for `caching_sha2_password` over plain TCP: a client
//! asks for the public key, encrypts its password (XORed with the scramble) with
//! RSA-OAEP, and the server decrypts it, so a decky recovers the cleartext password.
//!
//! The key is 2048 bits like the one `caching_sha2_password_auto_generate_rsa_keys`
//! makes, generated from the decky's seed (the same key after a restart, another on
//! every decky) with a small-prime sieve and Miller–Rabin; ring does not generate RSA
//! keys, so the arithmetic is num-bigint's.
use base64::Engine as _;
use num_bigint::BigUint;
use ring::digest::{Context, SHA1_FOR_LEGACY_USE_ONLY as SHA1, digest};
use ring::hmac;

/// Modulus size in bytes.
const K: usize = 256;
/// The public exponent.
const E: u32 = 65_537;
/// Odd primes the sieve divides candidates by before Miller–Rabin.
const SMALL_PRIMES: usize = 400;

/// An RSA key pair.
#[derive(Debug)]
pub struct Key {
    n: BigUint,
    p: BigUint,
    q: BigUint,
    dp: BigUint,
    dq: BigUint,
    qinv: BigUint,
    /// The public key as MySQL sends it: PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub pem: String,
}

/// Bytes for the key of `secret`, block after block.
struct Stream {
    key: hmac::Key,
    counter: u64,
}

impl Stream {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            self.counter += 1;
            let block = hmac::sign(&self.key, &self.counter.to_le_bytes());
            chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        }
    }
}

impl Key {
    /// The key pair `secret` stands for.
    pub fn generate(secret: &[u8; 32]) -> Key {
        let mut stream = Stream {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            counter: 0,
        };
        let primes = small_primes();
        let one = BigUint::from(1u32);
        loop {
            let p = prime(&mut stream, &primes);
            let q = prime(&mut stream, &primes);
            let n = &p * &q;
            if p == q || n.bits() != 2048 {
                continue;
            }
            let phi = (&p - &one) * (&q - &one);
            let (Some(d), Some(qinv)) = (BigUint::from(E).modinv(&phi), q.modinv(&p)) else {
                continue;
            };
            let dp = &d % (&p - &one);
            let dq = &d % (&q - &one);
            let pem = pem(&n);
            return Key {
                n,
                p,
                q,
                dp,
                dq,
                qinv,
                pem,
            };
        }
    }

    /// Decrypts an RSA-OAEP (SHA-1) block; `None` when it is not one.
    pub fn decrypt(&self, block: &[u8]) -> Option<Vec<u8>> {
        if block.len() != K {
            return None;
        }
        let c = BigUint::from_bytes_be(block);
        if c >= self.n {
            return None;
        }
        let m1 = c.modpow(&self.dp, &self.p);
        let m2 = c.modpow(&self.dq, &self.q);
        let diff = (&m1 + &self.p - (&m2 % &self.p)) % &self.p;
        let m = m2 + (diff * &self.qinv % &self.p) * &self.q;
        let raw = m.to_bytes_be();
        let mut em = vec![0u8; K.checked_sub(raw.len())?];
        em.extend_from_slice(&raw);
        oaep_decode(&em)
    }
}

fn small_primes() -> Vec<u32> {
    let mut found = Vec::with_capacity(SMALL_PRIMES);
    let mut n = 3u32;
    while found.len() < SMALL_PRIMES {
        if found
            .iter()
            .take_while(|&&p| p * p <= n)
            .all(|&p| !n.is_multiple_of(p))
        {
            found.push(n);
        }
        n += 2;
    }
    found
}

fn residue(n: &BigUint, p: u32) -> u32 {
    (n % p).to_u32_digits().first().copied().unwrap_or(0)
}

/// A 1024-bit prime with its top two bits set (so two make a 2048-bit modulus) and
/// `p - 1` prime to [`E`].
fn prime(stream: &mut Stream, primes: &[u32]) -> BigUint {
    loop {
        let mut bytes = [0u8; 128];
        stream.fill(&mut bytes);
        bytes[0] |= 0xc0;
        bytes[127] |= 1;
        let mut candidate = BigUint::from_bytes_be(&bytes);
        let mut residues: Vec<u32> = primes.iter().map(|&p| residue(&candidate, p)).collect();
        // Walk odd numbers from the random start, sieving by the residues.
        for _ in 0..4096 {
            let sieved = residues.iter().all(|&r| r != 0);
            if sieved && residue(&candidate, E) != 1 && probably_prime(&candidate) {
                return candidate;
            }
            candidate += 2u32;
            for (r, &p) in residues.iter_mut().zip(primes) {
                *r = (*r + 2) % p;
            }
        }
    }
}

/// Miller–Rabin with twelve bases: for random 1024-bit candidates the chance of a
/// composite passing is far below 2^-80.
fn probably_prime(n: &BigUint) -> bool {
    let one = BigUint::from(1u32);
    let minus_one = n - &one;
    let s = minus_one.trailing_zeros().unwrap_or(0);
    let d = &minus_one >> s;
    'bases: for a in [2u32, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = BigUint::from(a).modpow(&d, n);
        if x == one || x == minus_one {
            continue;
        }
        for _ in 1..s {
            x = x.modpow(&BigUint::from(2u32), n);
            if x == minus_one {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 20);
    let mut counter = 0u32;
    while out.len() < len {
        let mut ctx = Context::new(&SHA1);
        ctx.update(seed);
        ctx.update(&counter.to_be_bytes());
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// EME-OAEP decoding (RFC 8017 §7.1.2) with SHA-1 and an empty label, as OpenSSL's
/// `RSA_PKCS1_OAEP_PADDING`.
fn oaep_decode(em: &[u8]) -> Option<Vec<u8>> {
    let (&y, rest) = em.split_first()?;
    let (masked_seed, masked_db) = rest.split_at_checked(20)?;
    let seed_mask = mgf1(masked_db, 20);
    let seed: Vec<u8> = masked_seed
        .iter()
        .zip(&seed_mask)
        .map(|(a, b)| a ^ b)
        .collect();
    let db_mask = mgf1(&seed, masked_db.len());
    let db: Vec<u8> = masked_db.iter().zip(&db_mask).map(|(a, b)| a ^ b).collect();
    let label = digest(&SHA1, b"");
    if y != 0 || db.get(..20)? != label.as_ref() {
        return None;
    }
    let rest = db.get(20..)?;
    let one = rest.iter().position(|&b| b != 0)?;
    (rest[one] == 1).then(|| rest[one + 1..].to_vec())
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, u8::try_from(len).unwrap_or(0)]);
    } else {
        let l = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
        out.extend_from_slice(&[0x82, l[0], l[1]]);
    }
    out.extend_from_slice(content);
    out
}

fn der_uint(n: &BigUint) -> Vec<u8> {
    let mut bytes = n.to_bytes_be();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    der(0x02, &bytes)
}

/// The PEM `PUBLIC KEY` of modulus `n`, as OpenSSL writes it.
fn pem(n: &BigUint) -> String {
    let rsa_key = der(0x30, &[der_uint(n), der_uint(&BigUint::from(E))].concat());
    let algorithm = hex::decode("300d06092a864886f70d0101010500").unwrap_or_default();
    let bit_string = der(0x03, &[&[0u8][..], &rsa_key].concat());
    let spki = der(0x30, &[algorithm, bit_string].concat());
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OAEP encoding with a fixed seed, for the round trip.
    fn oaep_encode(message: &[u8], seed: &[u8; 20]) -> Vec<u8> {
        let label = digest(&SHA1, b"");
        let mut db = label.as_ref().to_vec();
        db.resize(K - 21 - message.len() - 1, 0);
        db.push(1);
        db.extend_from_slice(message);
        let db_mask = mgf1(seed, db.len());
        let masked_db: Vec<u8> = db.iter().zip(&db_mask).map(|(a, b)| a ^ b).collect();
        let seed_mask = mgf1(&masked_db, 20);
        let masked_seed: Vec<u8> = seed.iter().zip(&seed_mask).map(|(a, b)| a ^ b).collect();
        [&[0u8][..], &masked_seed, &masked_db].concat()
    }

    #[test]
    fn a_seeded_key_round_trips_and_is_stable() {
        let key = Key::generate(&[7; 32]);
        assert_eq!(key.n.bits(), 2048);
        assert!(key.pem.starts_with(
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
        ));
        let em = oaep_encode(b"secret\0", &[9; 20]);
        let c = BigUint::from_bytes_be(&em).modpow(&BigUint::from(E), &key.n);
        let mut block = vec![0u8; K - c.to_bytes_be().len()];
        block.extend_from_slice(&c.to_bytes_be());
        assert_eq!(key.decrypt(&block).as_deref(), Some(&b"secret\0"[..]));
        assert_eq!(key.decrypt(&[1; 10]), None);
        assert_eq!(key.decrypt(&[0xff; K]), None);
        let again = Key::generate(&[7; 32]);
        assert_eq!(again.pem, key.pem, "one seed, one key");
        assert_ne!(Key::generate(&[8; 32]).pem, key.pem);
    }
}
