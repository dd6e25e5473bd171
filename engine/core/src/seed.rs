//! The node's one secret: a BIP39 mnemonic in the data directory, created on first start.

use std::path::Path;

use crate::error::{Error, Result};

/// Read the BIP39 mnemonic from the data directory, or make one on first start (mode 0600).
pub(crate) fn load_or_create_seed(data_dir: &Path) -> Result<[u8; 64]> {
    let path = data_dir.join("seed.mnemonic");
    let words = match std::fs::read_to_string(&path) {
        Ok(w) => w,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mnemonic =
                bip39::Mnemonic::generate(24).map_err(|e| Error::Config(format!("cannot generate a seed: {e}")))?;
            let words = mnemonic.to_string();
            write_secret_file(&path, words.as_bytes())?;
            words
        }
        Err(e) => return Err(Error::Storage(format!("cannot read {}: {e}", path.display()))),
    };
    let mnemonic = bip39::Mnemonic::parse(words.trim())
        .map_err(|e| Error::Config(format!("{} does not hold a valid BIP39 mnemonic: {e}", path.display())))?;
    Ok(mnemonic.to_seed(""))
}

/// The LSPS2 promise secret (32 bytes, hex) from the data directory, made on first use
/// (mode 0600). Fee offers are signed with it: a new one voids every offer given out.
pub(crate) fn load_or_create_promise_secret(data_dir: &Path) -> Result<[u8; 32]> {
    use rand::RngCore;
    let path = data_dir.join("lsps2_promise.secret");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let text = hex::encode(secret);
            write_secret_file(&path, text.as_bytes())?;
            text
        }
        Err(e) => return Err(Error::Storage(format!("cannot read {}: {e}", path.display()))),
    };
    let mut secret = [0u8; 32];
    // The error names the file, never its content.
    hex::decode_to_slice(text.trim(), &mut secret)
        .map_err(|_| Error::Config(format!("{} does not hold 32 hex-encoded bytes", path.display())))?;
    Ok(secret)
}

/// Create `path` readable by its owner only; `create_new` so an existing secret is never
/// overwritten, and synced so a crash right after start-up cannot lose the seed.
fn write_secret_file(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| Error::Storage(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::Storage(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_created_once_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_seed(dir.path()).unwrap();
        assert_eq!(load_or_create_seed(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("seed.mnemonic")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn promise_secret_is_created_once_private_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_promise_secret(dir.path()).unwrap();
        assert_ne!(first, [0u8; 32]);
        assert_eq!(load_or_create_promise_secret(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("lsps2_promise.secret")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("lsps2_promise.secret"), "zz").unwrap();
        assert!(load_or_create_promise_secret(dir.path()).is_err());
    }
}
