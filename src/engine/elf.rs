//! Is a binary static? Decky images are `FROM scratch`, so the binary must not need a loader.
//!
//! A dynamically linked ELF executable names its loader in a `PT_INTERP` program header;
//! a static (or static-pie) one has none. Only 64-bit little-endian ELF is understood,
//! which is every platform decnet ships for.
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

const PT_INTERP: u32 = 3;
/// Program headers are a few dozen at most; more means a corrupt or hostile file.
const MAX_PHNUM: usize = 256;

/// Whether the ELF executable at `path` runs without a dynamic loader.
pub fn is_static(path: &Path) -> io::Result<bool> {
    let mut header = [0u8; 64];
    let mut file = File::open(path)?;
    file.read_exact(&mut header)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a 64-bit little-endian ELF executable",
        ));
    }
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]) as usize;
    let mut phoff_bytes = [0u8; 8];
    phoff_bytes.copy_from_slice(&header[0x20..0x28]);
    let phoff = u64::from_le_bytes(phoff_bytes);
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    if phentsize < 4 || phnum > MAX_PHNUM {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "implausible program headers",
        ));
    }
    let mut table = vec![0u8; phentsize * phnum];
    let mut file = File::open(path)?;
    io::copy(&mut (&mut file).take(phoff), &mut io::sink())?;
    file.read_exact(&mut table)?;
    Ok(!table
        .chunks_exact(phentsize)
        .any(|ph| u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]) == PT_INTERP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_binaries_are_dynamic_and_garbage_is_an_error() {
        assert!(!is_static(Path::new("/bin/sh")).expect("readable ELF"));
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk");
        std::fs::write(&junk, [0u8; 100]).expect("write");
        assert!(is_static(&junk).is_err());
        std::fs::write(&junk, b"\x7fELF").expect("write");
        assert!(is_static(&junk).is_err(), "short file");
    }
}
