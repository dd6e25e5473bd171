#![allow(dead_code)]

use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::{
    absolute, transaction, Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Witness, XOnlyPublicKey,
};
use regtest_chain::{ChainError, RegtestChain};

pub struct TestChain {
    pub dir: tempfile::TempDir,
    pub chain: RegtestChain,
}

impl TestChain {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = RegtestChain::open(&dir.path().join("chain.sqlite")).expect("open chain");
        TestChain { dir, chain }
    }
    pub fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("chain.sqlite")
    }
}

/// A P2WPKH test wallet key.
pub struct Key {
    pub sk: SecretKey,
    pub pk: PublicKey,
}

impl Key {
    pub fn new(seed: u8) -> Self {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(&[seed; 32]).expect("valid key");
        Key { sk, pk: PublicKey::from_secret_key(&secp, &sk) }
    }
    pub fn script(&self) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&CompressedPublicKey(self.pk).wpubkey_hash())
    }
    /// Sign input `idx` (spending this key's P2WPKH output worth `value`).
    pub fn sign(&self, tx: &mut Transaction, idx: usize, value: Amount) {
        let secp = Secp256k1::new();
        let sighash = SighashCache::new(&*tx)
            .p2wpkh_signature_hash(idx, &self.script(), value, EcdsaSighashType::All)
            .expect("sighash");
        let sig = secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &self.sk);
        let sig = bitcoin::ecdsa::Signature { signature: sig, sighash_type: EcdsaSighashType::All };
        tx.input[idx].witness = Witness::p2wpkh(&sig, &self.pk);
    }
}

/// A key-path-only taproot key.
pub struct TrKey {
    pub keypair: Keypair,
}

impl TrKey {
    pub fn new(seed: u8) -> Self {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(&[seed; 32]).expect("valid key");
        TrKey { keypair: Keypair::from_secret_key(&secp, &sk) }
    }
    pub fn script(&self) -> ScriptBuf {
        let secp = Secp256k1::new();
        let (xonly, _) = XOnlyPublicKey::from_keypair(&self.keypair);
        ScriptBuf::new_p2tr(&secp, xonly, None)
    }
    /// Key-path sign input `idx`; `prevouts` are all spent outputs.
    pub fn sign(&self, tx: &mut Transaction, idx: usize, prevouts: &[TxOut]) {
        let secp = Secp256k1::new();
        let sighash = SighashCache::new(&*tx)
            .taproot_key_spend_signature_hash(idx, &Prevouts::All(prevouts), TapSighashType::Default)
            .expect("sighash");
        let tweaked = self.keypair.tap_tweak(&secp, None);
        let sig = secp.sign_schnorr_no_aux_rand(&Message::from_digest(sighash.to_byte_array()), &tweaked.to_keypair());
        let sig = bitcoin::taproot::Signature { signature: sig, sighash_type: TapSighashType::Default };
        tx.input[idx].witness = Witness::p2tr_key_spend(&sig);
    }
}

pub fn unsigned_tx(inputs: &[OutPoint], outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: inputs
            .iter()
            .map(|op| TxIn {
                previous_output: *op,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    }
}

pub fn out(script: &ScriptBuf, sat: u64) -> TxOut {
    TxOut { value: Amount::from_sat(sat), script_pubkey: script.clone() }
}

/// Fund `script` with `sat` and confirm it; returns the outpoint paying it.
pub fn funded_outpoint(chain: &RegtestChain, script: &ScriptBuf, sat: u64) -> OutPoint {
    let txid = chain.fund(script, Amount::from_sat(sat)).expect("fund");
    chain.mine_blocks(1, None).expect("mine");
    let (tx, height) = chain.get_transaction(&txid).expect("funding tx known");
    assert!(height.is_some(), "funding tx confirmed");
    let vout = tx.output.iter().position(|o| o.script_pubkey == *script).expect("pays script");
    OutPoint { txid, vout: vout as u32 }
}

pub fn assert_rejected(res: Result<bitcoin::Txid, ChainError>, code: i32, reason: &str) {
    match res {
        Err(ChainError::Rejected { code: c, reason: r }) => {
            assert_eq!(c, code, "unexpected code for rejection {r:?}");
            assert!(r.contains(reason), "expected reason containing {reason:?}, got {r:?}");
        }
        other => panic!("expected rejection {code} {reason:?}, got {other:?}"),
    }
}
