//! `sntrup761x25519-sha512` (and its `@openssh.com` alias), as OpenSSH's
//! `kexsntrup761x25519.c` and draft-josefsson-ntruprime-ssh define it: the client sends
//! an sntrup761 public key and an X25519 key, the server an sntrup761 ciphertext and its
//! X25519 key, and the shared secret K is the *string* encoding of
//! SHA-512(sntrup761 key || X25519 shared point); the exchange hash is SHA-512.

use byteorder::{BigEndian, ByteOrder};
use curve25519_dalek::montgomery::MontgomeryPoint;
use log::debug;
use sha2::{Digest, Sha512};
use ssh_encoding::{Encode, Writer};

use super::{KexAlgorithm, KexAlgorithmImplementor, KexType, SharedSecret, compute_keys};
use crate::mac;
use crate::session::Exchange;
use crate::{CryptoVec, Error, cipher, msg};

const X25519_LEN: usize = 32;

pub struct Sntrup761X25519KexType {}

impl KexType for Sntrup761X25519KexType {
    fn make(&self) -> KexAlgorithm {
        Sntrup761X25519Kex {
            sntrup_secret: None,
            x25519_secret: None,
            k: None,
        }
        .into()
    }
}

#[doc(hidden)]
pub struct Sntrup761X25519Kex {
    sntrup_secret: Option<Box<sntrup761::DecapsulationKey>>,
    x25519_secret: Option<[u8; 32]>,
    /// SHA-512 of the two shared secrets: the raw K, sent as an SSH string.
    k: Option<[u8; 64]>,
}

impl std::fmt::Debug for Sntrup761X25519Kex {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Sntrup761X25519Kex {{ [hidden] }}")
    }
}

/// X25519 of `secret` with the peer's `public` bytes, refusing the all-zero result of a
/// low-order point as OpenSSH does.
fn x25519(secret: [u8; 32], public: &[u8]) -> Result<[u8; 32], Error> {
    let mut p = MontgomeryPoint([0; 32]);
    p.0.copy_from_slice(public);
    let shared = p.mul_clamped(secret);
    if shared.0 == [0u8; 32] {
        debug!("low-order curve25519 pubkey");
        return Err(Error::Kex);
    }
    Ok(shared.0)
}

fn combine(kem: &sntrup761::SharedSecret, ecdh: &[u8; 32]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(kem.as_ref());
    h.update(ecdh);
    h.finalize().into()
}

impl KexAlgorithmImplementor for Sntrup761X25519Kex {
    fn skip_exchange(&self) -> bool {
        false
    }

    fn server_dh(&mut self, exchange: &mut Exchange, payload: &[u8]) -> Result<(), Error> {
        if payload.first() != Some(&msg::KEX_ECDH_INIT) || payload.len() < 5 {
            return Err(Error::Inconsistent);
        }
        #[allow(clippy::indexing_slicing)]
        let len = BigEndian::read_u32(&payload[1..]) as usize;
        if len != sntrup761::PUBLIC_KEY_SIZE + X25519_LEN || payload.len() < 5 + len {
            return Err(Error::Kex);
        }
        #[allow(clippy::indexing_slicing)]
        let (c_pq, c_x) = payload[5..5 + len].split_at(sntrup761::PUBLIC_KEY_SIZE);
        let c_pq = sntrup761::EncapsulationKey::try_from(c_pq).map_err(|_| Error::Kex)?;
        let (ct, kem_key) = c_pq.encapsulate(rand::rng());

        let s_secret = rand::random::<[u8; 32]>();
        let s_pk = MontgomeryPoint::mul_base_clamped(s_secret);
        let ecdh = x25519(s_secret, c_x)?;

        exchange.server_ephemeral.clear();
        exchange.server_ephemeral.extend_from_slice(ct.as_ref());
        exchange.server_ephemeral.extend_from_slice(&s_pk.0);
        self.k = Some(combine(&kem_key, &ecdh));
        Ok(())
    }

    fn client_dh(
        &mut self,
        client_ephemeral: &mut Vec<u8>,
        writer: &mut impl Writer,
    ) -> Result<(), Error> {
        let (pk, sk) = sntrup761::generate_key(rand::rng());
        let x_secret = rand::random::<[u8; 32]>();
        let x_pk = MontgomeryPoint::mul_base_clamped(x_secret);

        client_ephemeral.clear();
        client_ephemeral.extend_from_slice(pk.as_ref());
        client_ephemeral.extend_from_slice(&x_pk.0);
        msg::KEX_ECDH_INIT.encode(writer)?;
        client_ephemeral.as_slice().encode(writer)?;

        self.sntrup_secret = Some(Box::new(sk));
        self.x25519_secret = Some(x_secret);
        Ok(())
    }

    fn compute_shared_secret(&mut self, remote_pubkey_: &[u8]) -> Result<(), Error> {
        if remote_pubkey_.len() != sntrup761::CIPHERTEXT_SIZE + X25519_LEN {
            return Err(Error::Kex);
        }
        let (ct, s_x) = remote_pubkey_.split_at(sntrup761::CIPHERTEXT_SIZE);
        let ct = sntrup761::Ciphertext::try_from(ct).map_err(|_| Error::Kex)?;
        let sk = self.sntrup_secret.take().ok_or(Error::KexInit)?;
        let kem_key = sk.decapsulate(&ct);
        let x_secret = self.x25519_secret.take().ok_or(Error::KexInit)?;
        let ecdh = x25519(x_secret, s_x)?;
        self.k = Some(combine(&kem_key, &ecdh));
        Ok(())
    }

    fn shared_secret_bytes(&self) -> Option<&[u8]> {
        self.k.as_ref().map(|k| k.as_slice())
    }

    fn compute_exchange_hash(
        &self,
        key: &[u8],
        exchange: &Exchange,
        buffer: &mut CryptoVec,
    ) -> Result<Vec<u8>, Error> {
        let k = self.k.as_ref().ok_or(Error::KexInit)?;
        buffer.clear();
        exchange.client_id.encode(buffer)?;
        exchange.server_id.encode(buffer)?;
        exchange.client_kex_init.encode(buffer)?;
        exchange.server_kex_init.encode(buffer)?;
        buffer.extend(key);
        exchange.client_ephemeral.encode(buffer)?;
        exchange.server_ephemeral.encode(buffer)?;
        k.as_slice().encode(buffer)?;
        Ok(Sha512::digest(&buffer[..]).to_vec())
    }

    fn compute_keys(
        &self,
        session_id: &[u8],
        exchange_hash: &[u8],
        cipher: cipher::Name,
        remote_to_local_mac: mac::Name,
        local_to_remote_mac: mac::Name,
        is_server: bool,
    ) -> Result<super::cipher::CipherPair, Error> {
        let k = self.k.as_ref().ok_or(Error::KexInit)?;
        let shared_secret = SharedSecret::from_string(k)?;
        compute_keys::<Sha512>(
            Some(&shared_secret),
            session_id,
            exchange_hash,
            cipher,
            remote_to_local_mac,
            local_to_remote_mac,
            is_server,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_agree() {
        let mut client = Sntrup761X25519KexType {}.make();
        let mut server = Sntrup761X25519KexType {}.make();
        let mut exchange = Exchange::default();
        let mut init = Vec::new();
        client
            .client_dh(&mut exchange.client_ephemeral, &mut init)
            .unwrap();
        assert_eq!(init.len(), 1 + 4 + 1158 + 32);
        server.server_dh(&mut exchange, &init).unwrap();
        assert_eq!(exchange.server_ephemeral.len(), 1039 + 32);
        client
            .compute_shared_secret(&exchange.server_ephemeral)
            .unwrap();
        assert_eq!(client.shared_secret_bytes(), server.shared_secret_bytes());
        assert_eq!(client.shared_secret_bytes().map(<[u8]>::len), Some(64));
    }

    #[test]
    fn short_or_wrong_init_is_refused() {
        let mut server = Sntrup761X25519KexType {}.make();
        let mut exchange = Exchange::default();
        assert!(
            server
                .server_dh(&mut exchange, &[msg::KEX_ECDH_INIT])
                .is_err()
        );
        let mut init = vec![msg::KEX_ECDH_INIT, 0, 0, 0, 32];
        init.extend([9u8; 32]);
        assert!(server.server_dh(&mut exchange, &init).is_err());
    }
}
