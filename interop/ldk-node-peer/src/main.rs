//! Stock ldk-node 0.7.1 as a peer for lsp-node's interop tests: a driver that reads one JSON
//! command per line on stdin and writes one JSON answer per line on stdout (see `protocol.rs`).
//! stdout carries answers only; the driver's notes go to stderr and ldk-node's log to
//! `<data_dir>/ldk_node.log`.

mod events;
mod protocol;

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::str::FromStr;
use std::time::{Duration, Instant};

use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::bitcoin::{Address, Network};
use ldk_node::config::{
    AnchorChannelsConfig, AsyncPaymentsRole, BackgroundSyncConfig, ChannelConfig, EsploraSyncConfig,
};
use ldk_node::lightning::blinded_path::message::BlindedMessagePath;
use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning::offers::offer::Offer;
use ldk_node::lightning::routing::gossip::NodeId;
use ldk_node::lightning::util::ser::{Readable, Writeable};
use ldk_node::lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description};
use ldk_node::lightning_liquidity::lsps1::msgs::LSPS1OrderId;
use ldk_node::liquidity::LSPS1OrderStatus;
use ldk_node::logger::LogLevel;
use ldk_node::payment::PaymentDetails;
use ldk_node::{Builder, Event, Node};
use serde_json::{json, Value};

use crate::protocol::{AsyncRole, Command};

/// The longest line read from stdin: commands are small, a runaway writer is a bug.
const MAX_LINE: usize = 64 * 1024;
/// How often `wait_event` looks at ldk-node's queue.
const EVENT_POLL: Duration = Duration::from_millis(20);

type Answer = Result<Value, String>;

/// The driver's state: the node once started, and events already acknowledged to ldk-node but
/// not yet asked for (a `wait_event` for one kind must not lose the others).
#[derive(Default)]
struct Driver {
    node: Option<Node>,
    backlog: VecDeque<Event>,
}

fn main() {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    let mut driver = Driver::default();
    let mut line = String::new();
    loop {
        line.clear();
        let read = stdin.lock().read_line(&mut line);
        let (answer, done) = match read {
            Ok(0) => break,
            Err(e) => (Err(format!("reading stdin: {e}")), true),
            Ok(n) if n > MAX_LINE => (Err(format!("command longer than {MAX_LINE} bytes")), false),
            Ok(_) => match serde_json::from_str::<Command>(line.trim()) {
                Err(e) => (Err(format!("bad command: {e}")), false),
                Ok(cmd) => {
                    let stop = matches!(cmd, Command::Stop);
                    (driver.run(cmd), stop)
                }
            },
        };
        let out = match answer {
            Ok(result) => json!({"ok": true, "result": result}),
            Err(error) => json!({"ok": false, "error": error}),
        };
        // A closed stdout means the test is gone: nothing left to answer.
        if writeln!(stdout, "{out}").and_then(|_| stdout.flush()).is_err() || done {
            break;
        }
    }
    if let Some(node) = driver.node.take() {
        // stdin closed without `stop` (the test died): still shut down cleanly.
        let _ = node.stop();
    }
}

impl Driver {
    fn node(&self) -> Result<&Node, String> {
        self.node.as_ref().ok_or_else(|| "the node is not started (send start first)".to_string())
    }

    fn run(&mut self, cmd: Command) -> Answer {
        match cmd {
            Command::Start(s) => self.start(s),
            Command::NodeId => Ok(json!({"node_id": self.node()?.node_id().to_string()})),
            Command::NewAddress => {
                let address = self.node()?.onchain_payment().new_address().map_err(err)?;
                Ok(json!({"address": address.to_string()}))
            }
            Command::Balances => Ok(balances(self.node()?)),
            Command::Sync => {
                self.node()?.sync_wallets().map_err(err)?;
                Ok(json!({}))
            }
            Command::Connect(c) => {
                let node = self.node()?;
                node.connect(pubkey(&c.node_id)?, socket(&c.address)?, c.persist).map_err(err)?;
                Ok(json!({"connected": c.node_id}))
            }
            Command::OpenChannel(c) => open_channel(self.node()?, c),
            Command::Channels => Ok(Value::Array(self.node()?.list_channels().iter().map(events::channel).collect())),
            Command::ReceiveInvoice(r) => {
                let node = self.node()?;
                let invoice = node.bolt11_payment().receive(r.amount_msat, &description(r.description)?, r.expiry_secs);
                Ok(invoice_json(&invoice.map_err(err)?))
            }
            Command::ReceiveViaJitChannel(r) => {
                let node = self.node()?;
                let desc = description(r.description)?;
                let invoice = node.bolt11_payment().receive_via_jit_channel(
                    r.amount_msat,
                    &desc,
                    r.expiry_secs,
                    r.max_lsp_fee_msat,
                );
                Ok(invoice_json(&invoice.map_err(err)?))
            }
            Command::Lsps1RequestChannel(r) => {
                let lsps1 = self.node()?.lsps1_liquidity();
                let status = lsps1
                    .request_channel(r.lsp_balance_sat, r.client_balance_sat, r.channel_expiry_blocks, r.announce)
                    .map_err(err)?;
                order_json(&status)
            }
            Command::Lsps1CheckOrder(c) => {
                let status =
                    self.node()?.lsps1_liquidity().check_order_status(LSPS1OrderId(c.order_id)).map_err(err)?;
                order_json(&status)
            }
            Command::PayInvoice(p) => {
                let node = self.node()?;
                let invoice = Bolt11Invoice::from_str(p.bolt11.trim()).map_err(|e| format!("bad invoice: {e}"))?;
                let bolt11 = node.bolt11_payment();
                let id = match p.amount_msat {
                    None => bolt11.send(&invoice, None),
                    Some(msat) => bolt11.send_using_amount(&invoice, msat, None),
                };
                let id = id.map_err(err)?;
                Ok(json!({"payment_id": events::hex(&id.0), "payment_hash": invoice.payment_hash().to_string()}))
            }
            Command::AsyncSetPaths(a) => {
                let bytes = unhex(&a.paths_hex)?;
                let paths = <Vec<BlindedMessagePath> as Readable>::read(&mut &bytes[..])
                    .map_err(|e| format!("bad paths: {e:?}"))?;
                self.node()?.bolt12_payment().set_paths_to_static_invoice_server(paths).map_err(err)?;
                Ok(json!({}))
            }
            Command::AsyncReceiveOffer => {
                // Fails until the server confirmed it keeps our static invoice.
                let offer = self.node()?.bolt12_payment().receive_async().map_err(err)?;
                Ok(json!({"offer": offer.to_string()}))
            }
            Command::AsyncServerPaths(a) => {
                let id = unhex(&a.recipient_id_hex)?;
                let paths = self.node()?.bolt12_payment().blinded_paths_for_async_recipient(id).map_err(err)?;
                Ok(json!({"paths_hex": events::hex(&paths.encode())}))
            }
            Command::PayOffer(p) => {
                let offer = Offer::from_str(p.offer.trim()).map_err(|e| format!("bad offer: {e:?}"))?;
                let id = self.node()?.bolt12_payment().send_using_amount(&offer, p.amount_msat, None, None, None);
                Ok(json!({"payment_id": events::hex(&id.map_err(err)?.0)}))
            }
            Command::GraphNode(g) => {
                let node = self.node()?;
                let id = NodeId::from_pubkey(&pubkey(&g.node_id)?);
                let info = node.network_graph().node(&id);
                Ok(json!({
                    "known": info.is_some(),
                    "announced": info.is_some_and(|i| i.announcement_info.is_some()),
                }))
            }
            Command::Payment(p) => {
                let id = PaymentId(hex32(&p.payment_id)?);
                let details = self.node()?.payment(&id).ok_or("no payment with that id")?;
                Ok(payment_json(&details))
            }
            Command::SendOnchain(s) => {
                let node = self.node()?;
                let address = Address::from_str(&s.address)
                    .map_err(|e| format!("bad address: {e}"))?
                    .require_network(Network::Regtest)
                    .map_err(|e| format!("bad address: {e}"))?;
                let txid = node.onchain_payment().send_to_address(&address, s.amount_sat, None).map_err(err)?;
                Ok(json!({"txid": txid.to_string()}))
            }
            Command::WaitEvent(w) => self.wait_event(&w.kinds, w.timeout_secs),
            Command::Stop => {
                if let Some(node) = self.node.take() {
                    node.stop().map_err(err)?;
                }
                Ok(json!({}))
            }
        }
    }

    fn start(&mut self, s: protocol::Start) -> Answer {
        if self.node.is_some() {
            return Err("already started".into());
        }
        if s.network != "regtest" {
            return Err(format!("network {:?}: only regtest is supported", s.network));
        }
        let listen = socket(&s.listen_addr)?;
        let mut config = ldk_node::config::Config::default();
        if !s.anchor_channels {
            config.anchor_channels_config = None;
        } else {
            config.anchor_channels_config = Some(AnchorChannelsConfig::default());
        }
        let mut builder = Builder::from_config(config);
        builder.set_network(Network::Regtest);
        builder.set_storage_dir_path(s.data_dir.clone());
        builder.set_filesystem_logger(Some(format!("{}/ldk_node.log", s.data_dir)), Some(LogLevel::Debug));
        let secs = s.sync_interval_secs;
        let background = BackgroundSyncConfig {
            onchain_wallet_sync_interval_secs: secs,
            lightning_wallet_sync_interval_secs: secs,
            fee_rate_cache_update_interval_secs: secs,
        };
        let sync = EsploraSyncConfig { background_sync_config: Some(background) };
        builder.set_chain_source_esplora(s.esplora_url.clone(), Some(sync));
        builder.set_gossip_source_p2p();
        builder.set_listening_addresses(vec![listen.clone()]).map_err(err)?;
        builder.set_node_alias(s.alias.clone()).map_err(err)?;
        if let Some(lsp) = &s.lsps1 {
            builder.set_liquidity_source_lsps1(pubkey(&lsp.node_id)?, socket(&lsp.address)?, lsp.token.clone());
        }
        if let Some(lsp) = &s.lsps2 {
            builder.set_liquidity_source_lsps2(pubkey(&lsp.node_id)?, socket(&lsp.address)?, lsp.token.clone());
        }
        if let Some(role) = &s.async_payments_role {
            let role = match role {
                AsyncRole::Client => AsyncPaymentsRole::Client,
                AsyncRole::Server => AsyncPaymentsRole::Server,
            };
            builder.set_async_payments_role(Some(role)).map_err(err)?;
        }
        let node = builder.build().map_err(err)?;
        node.start().map_err(err)?;
        let node_id = node.node_id().to_string();
        eprintln!("ldk-node-peer: started {node_id} on {listen}");
        self.node = Some(node);
        Ok(json!({"node_id": node_id, "listen_addr": listen.to_string()}))
    }

    /// The next event of one of `kinds` (any with none): first from the backlog, then from
    /// ldk-node's queue, each acknowledged with `event_handled` as it is taken off that queue.
    fn wait_event(&mut self, kinds: &[String], timeout_secs: f64) -> Answer {
        if !(0.0..=3600.0).contains(&timeout_secs) {
            return Err("timeout_secs must be between 0 and 3600".into());
        }
        let wanted = |e: &Event| kinds.is_empty() || kinds.iter().any(|k| k == events::kind(e));
        if let Some(i) = self.backlog.iter().position(wanted) {
            let event = self.backlog.remove(i).expect("position is in range");
            return Ok(events::event(&event));
        }
        let node = self.node.as_ref().ok_or("the node is not started (send start first)")?;
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_secs);
        loop {
            while let Some(event) = node.next_event() {
                node.event_handled().map_err(err)?;
                if wanted(&event) {
                    return Ok(events::event(&event));
                }
                self.backlog.push_back(event);
            }
            if Instant::now() >= deadline {
                return Err(format!("no event of {kinds:?} within {timeout_secs}s"));
            }
            std::thread::sleep(EVENT_POLL);
        }
    }
}

fn open_channel(node: &Node, c: protocol::OpenChannel) -> Answer {
    let config = if c.fee_base_msat.is_some() || c.fee_ppm.is_some() {
        let mut config = ChannelConfig::default();
        if let Some(base) = c.fee_base_msat {
            config.forwarding_fee_base_msat = base;
        }
        if let Some(ppm) = c.fee_ppm {
            config.forwarding_fee_proportional_millionths = ppm;
        }
        Some(config)
    } else {
        None
    };
    let (id, addr) = (pubkey(&c.node_id)?, socket(&c.address)?);
    let uid = if c.announce {
        node.open_announced_channel(id, addr, c.amount_sat, c.push_msat, config)
    } else {
        node.open_channel(id, addr, c.amount_sat, c.push_msat, config)
    };
    Ok(json!({"user_channel_id": uid.map_err(err)?.0.to_string()}))
}

fn balances(node: &Node) -> Value {
    let b = node.list_balances();
    let channels = node.list_channels();
    json!({
        "total_onchain_sat": b.total_onchain_balance_sats,
        "spendable_onchain_sat": b.spendable_onchain_balance_sats,
        "anchor_reserve_sat": b.total_anchor_channels_reserve_sats,
        "total_lightning_sat": b.total_lightning_balance_sats,
        "outbound_msat": channels.iter().map(|c| c.outbound_capacity_msat).sum::<u64>(),
        "inbound_msat": channels.iter().map(|c| c.inbound_capacity_msat).sum::<u64>(),
    })
}

fn invoice_json(invoice: &Bolt11Invoice) -> Value {
    json!({
        "bolt11": invoice.to_string(),
        "payment_hash": invoice.payment_hash().to_string(),
        "amount_msat": invoice.amount_milli_satoshis(),
    })
}

fn payment_json(p: &PaymentDetails) -> Value {
    json!({
        "payment_id": events::hex(&p.id.0),
        "amount_msat": p.amount_msat,
        "fee_paid_msat": p.fee_paid_msat,
        "direction": format!("{:?}", p.direction).to_lowercase(),
        "status": format!("{:?}", p.status).to_lowercase(),
        "kind": format!("{:?}", p.kind),
    })
}

fn order_json(s: &LSPS1OrderStatus) -> Answer {
    let ser = |v: Result<Value, serde_json::Error>| v.map_err(|e| format!("encoding the order: {e}"));
    Ok(json!({
        "order_id": s.order_id.0,
        "order_params": ser(serde_json::to_value(&s.order_params))?,
        "payment_options": ser(serde_json::to_value(&s.payment_options))?,
        "channel_state": ser(serde_json::to_value(&s.channel_state))?,
    }))
}

fn description(text: String) -> Result<Bolt11InvoiceDescription, String> {
    let d = Description::new(text).map_err(|e| format!("bad description: {e}"))?;
    Ok(Bolt11InvoiceDescription::Direct(d))
}

fn pubkey(s: &str) -> Result<PublicKey, String> {
    PublicKey::from_str(s).map_err(|e| format!("bad node id {s:?}: {e}"))
}

fn socket(s: &str) -> Result<SocketAddress, String> {
    SocketAddress::from_str(s).map_err(|e| format!("bad address {s:?}: {e}"))
}

fn hex32(s: &str) -> Result<[u8; 32], String> {
    let bad = || format!("bad id {s:?}: want 64 hex digits");
    if s.len() != 64 || !s.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return Err("bad hex: odd length or not ASCII".into());
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| "bad hex".to_string())).collect()
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}
