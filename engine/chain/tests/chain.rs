mod common;

use std::str::FromStr;

use bitcoin::{absolute, Amount, BlockHash, OutPoint, Sequence, Txid};
use common::*;
use regtest_chain::{block_subsidy, RegtestChain};

const GENESIS: &str = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206";

#[test]
fn genesis_is_real_regtest_genesis_and_faucet_is_mature() {
    let t = TestChain::new();
    let chain = &t.chain;
    assert_eq!(chain.block_hash(0), Some(BlockHash::from_str(GENESIS).unwrap()));
    assert_eq!(chain.height(), 101);
    assert_eq!(chain.block_hash(101), Some(chain.tip_hash()));
    // Every mined block is valid: PoW, merkle root, BIP34 height, links to its parent.
    for h in 1..=101u32 {
        let (block, height) = chain.get_block(&chain.block_hash(h).unwrap()).unwrap();
        assert_eq!(height, h);
        assert!(block.header.validate_pow(block.header.target()).is_ok());
        assert_eq!(block.header.bits.to_consensus(), 0x207fffff);
        assert!(block.check_merkle_root());
        assert_eq!(block.header.prev_blockhash, chain.block_hash(h - 1).unwrap());
        let cb_script = block.txdata[0].input[0].script_sig.as_bytes().to_vec();
        let expected = bitcoin::blockdata::script::Builder::new().push_int(h as i64).into_script();
        assert!(cb_script.starts_with(expected.as_bytes()), "BIP34 height at {h}");
        assert_eq!(block.txdata[0].output[0].value.to_sat(), block_subsidy(h));
        assert_eq!(block.txdata[0].output[0].script_pubkey, chain.faucet_script());
    }
    // Timestamps strictly increase.
    let times: Vec<u32> =
        (0..=101).map(|h| chain.get_block(&chain.block_hash(h).unwrap()).unwrap().0.header.time).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(block_subsidy(149), 5_000_000_000);
    assert_eq!(block_subsidy(150), 2_500_000_000);
}

#[test]
fn mine_fund_confirm_and_witness_commitment() {
    let t = TestChain::new();
    let chain = &t.chain;
    let key = Key::new(7);
    let txid = chain.fund(&key.script(), Amount::from_sat(1_000_000)).unwrap();
    assert_eq!(chain.mempool_txids(), vec![txid]);
    assert_eq!(chain.get_transaction(&txid).unwrap().1, None);
    // A second fund before mining chains off the faucet change.
    let txid2 = chain.fund(&key.script(), Amount::from_sat(2_000_000)).unwrap();
    assert_eq!(chain.mempool_txids(), vec![txid, txid2]);

    let to = Key::new(8).script();
    let hashes = chain.mine_blocks(2, Some(&to)).unwrap();
    assert_eq!(hashes.len(), 2);
    assert_eq!(chain.height(), 103);
    assert!(chain.mempool_txids().is_empty());
    assert_eq!(chain.get_transaction(&txid).unwrap().1, Some(102));
    assert_eq!(chain.get_transaction(&txid2).unwrap().1, Some(102));
    let (block, _) = chain.get_block(&hashes[0]).unwrap();
    assert_eq!(block.txdata.len(), 3);
    assert_eq!(block.txdata[1].compute_txid(), txid, "parent precedes child");
    assert!(block.check_witness_commitment());
    assert!(block.txdata[0]
        .output
        .iter()
        .any(|o| o.script_pubkey.as_bytes().starts_with(&[0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed])));
    // Coinbase pays `to` with subsidy plus fees.
    assert_eq!(block.txdata[0].output[0].script_pubkey, to);
    assert!(block.txdata[0].output[0].value.to_sat() > block_subsidy(102));
    let (tx, _) = chain.get_transaction(&txid).unwrap();
    let vout = tx.output.iter().position(|o| o.script_pubkey == key.script()).unwrap();
    let (utxo, h) = chain.get_utxo(&OutPoint { txid, vout: vout as u32 }).unwrap();
    assert_eq!((utxo.value.to_sat(), h), (1_000_000, 102));
}

#[test]
fn signed_spend_accepted_and_double_spends_rejected() {
    let t = TestChain::new();
    let chain = &t.chain;
    let key = Key::new(9);
    let dest = Key::new(10).script();
    let op = funded_outpoint(chain, &key.script(), 100_000);

    let mut spend = unsigned_tx(&[op], vec![out(&dest, 99_000)]);
    key.sign(&mut spend, 0, Amount::from_sat(100_000));
    let txid = chain.submit_transaction(&spend).unwrap();
    assert_eq!(txid, spend.compute_txid());
    // Resubmitting a mempool tx is fine.
    assert_eq!(chain.submit_transaction(&spend).unwrap(), txid);

    // A conflicting tx paying a lower fee is refused...
    let mut low = unsigned_tx(&[op], vec![out(&dest, 99_500)]);
    key.sign(&mut low, 0, Amount::from_sat(100_000));
    assert_rejected(chain.submit_transaction(&low), -26, "txn-mempool-conflict");
    // ...a higher-fee one replaces it (full RBF).
    let mut high = unsigned_tx(&[op], vec![out(&dest, 98_000)]);
    key.sign(&mut high, 0, Amount::from_sat(100_000));
    let high_id = chain.submit_transaction(&high).unwrap();
    assert_eq!(chain.mempool_txids(), vec![high_id]);
    assert!(chain.get_transaction(&txid).is_none(), "replaced tx evicted");

    chain.mine_blocks(1, None).unwrap();
    assert_eq!(chain.get_transaction(&high_id).unwrap().1, Some(chain.height()));
    // Already confirmed.
    assert_rejected(chain.submit_transaction(&high), -27, "Transaction already in block chain");
    // Spending the now-spent confirmed output again: missing or spent.
    assert_rejected(chain.submit_transaction(&spend), -25, "bad-txns-inputs-missingorspent");
}

#[test]
fn rbf_evicts_descendants() {
    let t = TestChain::new();
    let chain = &t.chain;
    let key = Key::new(11);
    let op = funded_outpoint(chain, &key.script(), 100_000);
    let mut parent = unsigned_tx(&[op], vec![out(&key.script(), 99_000)]);
    key.sign(&mut parent, 0, Amount::from_sat(100_000));
    let parent_id = chain.submit_transaction(&parent).unwrap();
    let mut child = unsigned_tx(&[OutPoint { txid: parent_id, vout: 0 }], vec![out(&key.script(), 98_000)]);
    key.sign(&mut child, 0, Amount::from_sat(99_000));
    let child_id = chain.submit_transaction(&child).unwrap();
    assert_eq!(chain.mempool_txids(), vec![parent_id, child_id]);
    // Must beat parent + child fees (2000 sat): 1500 is not enough even at a higher feerate.
    let mut weak = unsigned_tx(&[op], vec![out(&key.script(), 98_500)]);
    key.sign(&mut weak, 0, Amount::from_sat(100_000));
    assert_rejected(chain.submit_transaction(&weak), -26, "txn-mempool-conflict");
    let mut strong = unsigned_tx(&[op], vec![out(&key.script(), 97_000)]);
    key.sign(&mut strong, 0, Amount::from_sat(100_000));
    let strong_id = chain.submit_transaction(&strong).unwrap();
    assert_eq!(chain.mempool_txids(), vec![strong_id]);
}

#[test]
fn missing_inputs_rejected() {
    let t = TestChain::new();
    let key = Key::new(12);
    let fake = OutPoint { txid: Txid::from_str(&"ab".repeat(32)).unwrap(), vout: 0 };
    let mut tx = unsigned_tx(&[fake], vec![out(&key.script(), 1000)]);
    key.sign(&mut tx, 0, Amount::from_sat(2000));
    assert_rejected(t.chain.submit_transaction(&tx), -25, "bad-txns-inputs-missingorspent");
}

#[test]
fn invalid_signatures_rejected() {
    let t = TestChain::new();
    let chain = &t.chain;
    let key = Key::new(13);
    let op = funded_outpoint(chain, &key.script(), 100_000);
    // Signed by the wrong key (witness pubkey doesn't match the program).
    let mut tx = unsigned_tx(&[op], vec![out(&key.script(), 99_000)]);
    Key::new(14).sign(&mut tx, 0, Amount::from_sat(100_000));
    assert_rejected(chain.submit_transaction(&tx), -26, "mandatory-script-verify-flag-failed");
    // Signed over the wrong amount (BIP143 commits to it).
    let mut tx = unsigned_tx(&[op], vec![out(&key.script(), 99_000)]);
    key.sign(&mut tx, 0, Amount::from_sat(100_001));
    assert_rejected(chain.submit_transaction(&tx), -26, "mandatory-script-verify-flag-failed");
    // Signature valid, then outputs tampered with.
    let mut tx = unsigned_tx(&[op], vec![out(&key.script(), 99_000)]);
    key.sign(&mut tx, 0, Amount::from_sat(100_000));
    tx.output[0].value = Amount::from_sat(98_000);
    assert_rejected(chain.submit_transaction(&tx), -26, "mandatory-script-verify-flag-failed");
    assert!(chain.mempool_txids().is_empty());
}

#[test]
fn taproot_key_spend_checked() {
    let t = TestChain::new();
    let chain = &t.chain;
    let tr = TrKey::new(15);
    let op = funded_outpoint(chain, &tr.script(), 50_000);
    let prevouts = vec![out(&tr.script(), 50_000)];
    let mut bad = unsigned_tx(&[op], vec![out(&tr.script(), 49_000)]);
    TrKey::new(16).sign(&mut bad, 0, &prevouts);
    assert_rejected(chain.submit_transaction(&bad), -26, "mandatory-script-verify-flag-failed");
    let mut good = unsigned_tx(&[op], vec![out(&tr.script(), 49_000)]);
    tr.sign(&mut good, 0, &prevouts);
    chain.submit_transaction(&good).unwrap();
}

#[test]
fn locktimes_enforced() {
    let t = TestChain::new();
    let chain = &t.chain;
    let key = Key::new(17);
    let op = funded_outpoint(chain, &key.script(), 100_000);
    let h = chain.height();

    // Absolute height lock: valid only when lock < next block height.
    let mut tx = unsigned_tx(&[op], vec![out(&key.script(), 99_000)]);
    tx.lock_time = absolute::LockTime::from_height(h + 2).unwrap();
    key.sign(&mut tx, 0, Amount::from_sat(100_000));
    assert_rejected(chain.submit_transaction(&tx), -26, "non-final");
    // Time lock far in the future.
    let mut future = unsigned_tx(&[op], vec![out(&key.script(), 99_000)]);
    future.lock_time = absolute::LockTime::from_time(4_000_000_000).unwrap();
    key.sign(&mut future, 0, Amount::from_sat(100_000));
    assert_rejected(chain.submit_transaction(&future), -26, "non-final");

    // BIP68: 3-block relative lock on an output confirmed at height h.
    let mut rel = unsigned_tx(&[op], vec![out(&key.script(), 99_000)]);
    rel.input[0].sequence = Sequence::from_height(3);
    key.sign(&mut rel, 0, Amount::from_sat(100_000));
    assert_rejected(chain.submit_transaction(&rel), -26, "non-BIP68-final");
    // A version 1 tx ignores the relative lock (BIP68 applies to version >= 2 only).
    let op2 = funded_outpoint(chain, &key.script(), 100_000); // next height is now h+2
    let mut v1 = unsigned_tx(&[op2], vec![out(&key.script(), 99_000)]);
    v1.version = bitcoin::transaction::Version::ONE;
    v1.input[0].sequence = Sequence::from_height(3);
    key.sign(&mut v1, 0, Amount::from_sat(100_000));
    chain.submit_transaction(&v1).unwrap();
    assert_rejected(chain.submit_transaction(&tx), -26, "non-final");
    chain.mine_blocks(1, None).unwrap(); // next height h+3: both now final
    chain.submit_transaction(&rel).unwrap();
    // Time-based relative lock on a mempool parent is never final.
    let mut child = unsigned_tx(&[OutPoint { txid: rel.compute_txid(), vout: 0 }], vec![out(&key.script(), 98_000)]);
    child.input[0].sequence = Sequence::from_512_second_intervals(1);
    key.sign(&mut child, 0, Amount::from_sat(99_000));
    assert_rejected(chain.submit_transaction(&child), -26, "non-BIP68-final");
    chain.submit_transaction(&tx).map(|_| ()).unwrap_err(); // conflicts with rel at equal fee
}

#[test]
fn coinbase_maturity_fee_and_value_rules() {
    let t = TestChain::new();
    let chain = &t.chain;
    let key = Key::new(18);
    let hash = chain.mine_blocks(1, Some(&key.script())).unwrap()[0];
    let (block, _) = chain.get_block(&hash).unwrap();
    let cb = OutPoint { txid: block.txdata[0].compute_txid(), vout: 0 };
    let value = block.txdata[0].output[0].value;
    let mut tx = unsigned_tx(&[cb], vec![out(&key.script(), value.to_sat() - 1000)]);
    key.sign(&mut tx, 0, value);
    assert_rejected(chain.submit_transaction(&tx), -26, "bad-txns-premature-spend-of-coinbase");
    chain.mine_blocks(98, None).unwrap();
    assert_rejected(chain.submit_transaction(&tx), -26, "bad-txns-premature-spend-of-coinbase");
    chain.mine_blocks(1, None).unwrap();
    chain.submit_transaction(&tx).unwrap();

    let op = funded_outpoint(chain, &key.script(), 100_000);
    let mut over = unsigned_tx(&[op], vec![out(&key.script(), 100_001)]);
    key.sign(&mut over, 0, Amount::from_sat(100_000));
    assert_rejected(chain.submit_transaction(&over), -26, "bad-txns-in-belowout");
    let mut cheap = unsigned_tx(&[op], vec![out(&key.script(), 99_990)]);
    key.sign(&mut cheap, 0, Amount::from_sat(100_000));
    assert_rejected(chain.submit_transaction(&cheap), -26, "min relay fee not met");
    assert_rejected(chain.submit_transaction_hex("00zz"), -22, "TX decode failed");
}

#[test]
fn restart_keeps_chain_utxos_and_mempool() {
    let t = TestChain::new();
    let key = Key::new(19);
    let (op, tip, height, pending) = {
        let chain = &t.chain;
        let op = funded_outpoint(chain, &key.script(), 123_456);
        let pending = chain.fund(&key.script(), Amount::from_sat(5_000)).unwrap();
        (op, chain.tip_hash(), chain.height(), pending)
    };
    let faucet = t.chain.faucet_script();
    let TestChain { dir, chain } = t;
    drop(chain);
    let chain = RegtestChain::open(&dir.path().join("chain.sqlite")).unwrap();
    assert_eq!(chain.height(), height);
    assert_eq!(chain.tip_hash(), tip);
    assert_eq!(chain.faucet_script(), faucet, "faucet key persisted");
    assert_eq!(chain.get_utxo(&op).unwrap().0.value.to_sat(), 123_456);
    assert_eq!(chain.mempool_txids(), vec![pending]);
    // The reopened chain keeps working: spend the old utxo and mine.
    let mut spend = unsigned_tx(&[op], vec![out(&key.script(), 120_000)]);
    key.sign(&mut spend, 0, Amount::from_sat(123_456));
    let id = chain.submit_transaction(&spend).unwrap();
    chain.mine_blocks(1, None).unwrap();
    assert_eq!(chain.get_transaction(&id).unwrap().1, Some(height + 1));
    assert_eq!(chain.get_transaction(&pending).unwrap().1, Some(height + 1));
    assert!(chain.get_utxo(&op).is_none());
}
