mod common;

use std::str::FromStr;
use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, OutPoint, Txid};
use common::*;
use esplora_client::{AsyncClient, Builder, Error as EsploraError};
use regtest_chain::ChainServer;

const GENESIS: &str = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206";

async fn post(client: &AsyncClient, path: &str, body: &str) -> (u16, String) {
    let resp =
        client.client().post(format!("{}{}", client.url(), path)).body(body.to_string()).send().await.expect("POST");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

async fn get(client: &AsyncClient, path: &str) -> (u16, String) {
    let resp = client.client().get(format!("{}{}", client.url(), path)).send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

fn field<'a>(v: &'a serde_json::Value, k: &str) -> &'a serde_json::Value {
    v.get(k).unwrap_or_else(|| panic!("missing field {k} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esplora_client_drives_the_http_api() {
    let TestChain { dir: _dir, chain } = TestChain::new();
    let chain = Arc::new(chain);
    let server = ChainServer::start(chain.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = server.url();
    assert_eq!(url, format!("http://127.0.0.1:{}", server.local_addr().port()));
    let client = Builder::new(&url).build_async().unwrap();

    // Tip, height, headers, block status.
    let tip = client.get_tip_hash().await.unwrap();
    assert_eq!(tip, chain.tip_hash());
    assert_eq!(client.get_height().await.unwrap(), 101);
    let (tip_block, _) = chain.get_block(&tip).unwrap();
    assert_eq!(client.get_header_by_hash(&tip).await.unwrap(), tip_block.header);
    let st = client.get_block_status(&tip).await.unwrap();
    assert!(st.in_best_chain);
    assert_eq!((st.height, st.next_best), (Some(101), None));
    let st = client.get_block_status(&chain.block_hash(100).unwrap()).await.unwrap();
    assert_eq!(st.next_best, Some(tip));
    let unknown = BlockHash::from_byte_array([7u8; 32]);
    let st = client.get_block_status(&unknown).await.unwrap();
    assert!(!st.in_best_chain);
    assert_eq!((st.height, st.next_best), (None, None));
    assert!(client.get_header_by_hash(&unknown).await.is_err());
    assert_eq!(client.get_block_hash(0).await.unwrap(), BlockHash::from_str(GENESIS).unwrap());
    assert_eq!(client.get_block_by_hash(&tip).await.unwrap(), Some(tip_block));
    assert_eq!(client.get_block_by_hash(&unknown).await.unwrap(), None);

    // /blocks: 10 newest with every field BDK needs.
    let infos = client.get_block_infos(None).await.unwrap();
    assert_eq!(infos.len(), 10);
    assert_eq!(infos[0].id, tip);
    assert_eq!(infos[0].height, 101);
    assert_eq!(infos[9].height, 92);
    assert_eq!(infos[0].previousblockhash, chain.block_hash(100));
    assert_eq!(infos[0].bits.to_consensus(), 0x207fffff);
    assert!(infos[0].difficulty > 0.0);
    #[allow(deprecated)]
    let summaries = client.get_blocks(Some(5)).await.unwrap();
    assert_eq!(summaries.len(), 6);
    assert_eq!(summaries[5].previousblockhash, None, "genesis has no parent");

    // Fund through the operator endpoint; a non-regtest address is refused clearly.
    let key = Key::new(21);
    let addr = bitcoin::Address::from_script(&key.script(), bitcoin::Network::Regtest).unwrap();
    let (status, body) =
        post(&client, "/regtest/fund", r#"{"address":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4","amount_sat":1000}"#)
            .await;
    assert_eq!(status, 400);
    assert!(body.contains("not a regtest address"), "{body}");
    let (status, body) =
        post(&client, "/regtest/fund", &format!(r#"{{"address":"{addr}","amount_sat":250000}}"#)).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let fund_txid = Txid::from_str(field(&v, "txid").as_str().unwrap()).unwrap();
    let st = client.get_tx_status(&fund_txid).await.unwrap();
    assert!(!st.confirmed);
    assert_eq!(client.get_merkle_block(&fund_txid).await.unwrap(), None, "404 while unconfirmed");
    let history = client.scripthash_txs(&key.script(), None).await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(!history[0].status.confirmed);

    // Mine through the operator endpoint.
    let (status, body) = post(&client, "/regtest/mine", r#"{"blocks":2}"#).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(field(&v, "height").as_u64(), Some(103));
    assert_eq!(field(&v, "hashes").as_array().unwrap().len(), 2);
    let (status, body) = post(&client, "/regtest/mine", r#"{"blocks":1,"address":"nonsense"}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid address"), "{body}");

    // Transaction lookups.
    let (fund_tx, Some(102)) = chain.get_transaction(&fund_txid).unwrap() else {
        panic!("funding tx should be confirmed at 102")
    };
    assert_eq!(client.get_tx(&fund_txid).await.unwrap(), Some(fund_tx.clone()));
    let info = client.get_tx_info(&fund_txid).await.unwrap().unwrap();
    assert_eq!(info.to_tx(), fund_tx, "tx rebuilds exactly from JSON");
    assert_eq!(info.status.block_height, Some(102));
    assert_eq!(info.status.block_hash, chain.block_hash(102));
    assert!(info.status.block_time.is_some());
    assert!(info.fee > 0);
    let prevout_sum: u64 = info.vin.iter().map(|i| i.prevout.as_ref().unwrap().value).sum();
    let out_sum: u64 = info.vout.iter().map(|o| o.value).sum();
    assert_eq!(prevout_sum - out_sum, info.fee);
    assert_eq!(client.get_tx(&Txid::from_byte_array([9u8; 32])).await.unwrap(), None);
    let coinbase_id = chain.get_block(&chain.block_hash(102).unwrap()).unwrap().0.txdata[0].compute_txid();
    let cb = client.get_tx_info(&coinbase_id).await.unwrap().unwrap();
    assert!(cb.vin[0].is_coinbase && cb.vin[0].prevout.is_none());
    assert_eq!(cb.vin[0].vout, u32::MAX);
    assert_eq!(cb.vin[0].txid, Txid::all_zeros());

    // Merkle block proof, exactly as LDK checks it.
    let header = client.get_header_by_hash(&chain.block_hash(102).unwrap()).await.unwrap();
    let mb = client.get_merkle_block(&fund_txid).await.unwrap().expect("confirmed tx has proof");
    let mut matches = Vec::new();
    let mut indexes = Vec::new();
    let root = mb.txn.extract_matches(&mut matches, &mut indexes).unwrap();
    assert_eq!(matches, vec![fund_txid]);
    assert_eq!(root, header.merkle_root);
    assert_eq!(mb.header, header);
    // Electrs-style merkle proof: fold the branch back up to the root.
    let proof = client.get_merkle_proof(&fund_txid).await.unwrap().unwrap();
    assert_eq!(proof.block_height, 102);
    let mut acc = fund_txid.to_raw_hash();
    let mut pos = proof.pos;
    for sib in &proof.merkle {
        let mut data = Vec::new();
        let (l, r) = if pos % 2 == 0 { (acc, sib.to_raw_hash()) } else { (sib.to_raw_hash(), acc) };
        data.extend_from_slice(l.as_byte_array());
        data.extend_from_slice(r.as_byte_array());
        acc = bitcoin::hashes::sha256d::Hash::hash(&data);
        pos /= 2;
    }
    assert_eq!(acc.to_byte_array(), header.merkle_root.to_byte_array());

    // Output status and broadcast.
    let vout = fund_tx.output.iter().position(|o| o.script_pubkey == key.script()).unwrap() as u32;
    let os = client.get_output_status(&fund_txid, vout as u64).await.unwrap().unwrap();
    assert!(!os.spent);
    assert_eq!(client.get_output_status(&fund_txid, 99).await.unwrap(), None);
    let op = OutPoint { txid: fund_txid, vout };
    let dest = Key::new(22).script();
    let mut spend = unsigned_tx(&[op], vec![out(&dest, 240_000)]);
    key.sign(&mut spend, 0, Amount::from_sat(250_000));
    client.broadcast(&spend).await.unwrap();
    let spend_id = spend.compute_txid();
    let os = client.get_output_status(&fund_txid, vout as u64).await.unwrap().unwrap();
    assert!(os.spent);
    assert_eq!((os.txid, os.vin), (Some(spend_id), Some(0)));
    assert!(!os.status.unwrap().confirmed);
    let outspends = client.get_tx_outspends(&fund_txid).await.unwrap();
    assert_eq!(outspends.len(), fund_tx.output.len());
    assert!(outspends[vout as usize].spent);

    // A rejected broadcast surfaces bitcoind's error text with HTTP 400.
    let mut conflict = unsigned_tx(&[op], vec![out(&dest, 245_000)]);
    key.sign(&mut conflict, 0, Amount::from_sat(250_000));
    match client.broadcast(&conflict).await {
        Err(EsploraError::HttpResponse { status, message }) => {
            assert_eq!(status, 400);
            assert!(
                message.starts_with(r#"sendrawtransaction RPC error: {"code":-26,"message":"txn-mempool-conflict"#),
                "{message}"
            );
        }
        other => panic!("expected a 400 rejection, got {other:?}"),
    }
    let (status, body) = post(&client, "/tx", "deadbeef").await;
    assert_eq!(status, 400);
    assert!(body.contains(r#""code":-22"#) && body.contains("TX decode failed"), "{body}");

    // Script history: mempool first, then confirmed newest first; later pages empty.
    let history = client.scripthash_txs(&key.script(), None).await.unwrap();
    let ids: Vec<Txid> = history.iter().map(|t| t.txid).collect();
    assert_eq!(ids, vec![spend_id, fund_txid]);
    assert!(!history[0].status.confirmed && history[1].status.confirmed);
    assert!(client.scripthash_txs(&key.script(), Some(fund_txid)).await.unwrap().is_empty());

    // Confirm the spend, then the output status carries the confirmation.
    let (status, _) = post(&client, "/regtest/mine", "").await;
    assert_eq!(status, 200);
    let os = client.get_output_status(&fund_txid, vout as u64).await.unwrap().unwrap();
    let st = os.status.unwrap();
    assert!(st.confirmed);
    assert_eq!(st.block_height, Some(104));

    // Fee estimates.
    let fees = client.get_fee_estimates().await.unwrap();
    assert_eq!(fees.get(&1), Some(&2.0));
    assert_eq!(fees.get(&6), Some(&1.0));
    assert_eq!(fees.get(&1008), Some(&1.0));
    chain.set_fee_estimates([(1u16, 5.0), (144, 1.5)].into_iter().collect());
    let fees = client.get_fee_estimates().await.unwrap();
    assert_eq!(fees.len(), 2);
    assert_eq!(fees.get(&1), Some(&5.0));

    // Misc text endpoints; not-found is 404, never 5xx.
    let (status, body) = get(&client, &format!("/tx/{}/hex", spend_id)).await;
    assert_eq!((status, body), (200, bitcoin::consensus::encode::serialize_hex(&spend)));
    let (status, _) = get(&client, &format!("/tx/{}", Txid::from_byte_array([3u8; 32]))).await;
    assert_eq!(status, 404);
    let (status, _) = get(&client, "/block-height/9999").await;
    assert_eq!(status, 404);
    let (status, _) = get(&client, "/block/zz/header").await;
    assert_eq!(status, 400);

    server.stop().await;
    assert!(client.get_height().await.is_err(), "server stopped");
}
