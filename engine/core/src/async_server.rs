//! BOLT async payments, the server's side for offline recipients: blinded paths handed to a
//! recipient out of band, the static invoices it then asks us to keep (`PersistStaticInvoice`),
//! and our answers to payers asking for them (`StaticInvoiceRequested`).
//!
//! The rest of the protocol needs nothing here: payers' HTLCs flagged `hold_htlc` are held by
//! LDK itself (`UserConfig::enable_htlc_hold`, persisted in the channel manager) until the
//! recipient's `release_held_htlc`, and the `held_htlc_available` a payer sends an offline
//! recipient is an onion message like any other, kept in the LSP role's persistent mailbox and
//! delivered when it connects.

use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use lightning::blinded_path::message::BlindedMessagePath;
use lightning::events::ReplayEvent;
use lightning::offers::invoice_request::InvoiceRequest;
use lightning::offers::static_invoice::StaticInvoice;
use lightning::onion_message::messenger::Responder;
use lightning::util::logger::Level;
use lightning::util::ser::{Readable, Writeable};

use crate::error::{Error, Result};
use crate::io::StaticInvoiceRecord;
use crate::node::{Core, Node};
use crate::parse::{hexs, parse_pubkey};

/// The longest a recipient's blinded paths to us may stay valid.
pub const MAX_PATHS_VALID_DAYS: u32 = 3650;

impl Core {
    fn async_log(&self, level: Level, message: String) {
        self.logger.engine(level, format!("async payments: {message}"));
    }

    /// Keep the recipient's invoice, then tell it so. A write that fails leaves the event to
    /// LDK to hand again; a recipient past its bounds is left unanswered (it retries, then
    /// gives up), never acknowledged for an invoice we do not have.
    pub(crate) fn persist_static_invoice(
        &self, invoice: StaticInvoice, request_path: BlindedMessagePath, slot: u16, recipient_id: Vec<u8>,
        persisted: Responder,
    ) -> std::result::Result<(), ReplayEvent> {
        if !self.config.options.async_payments_server {
            self.async_log(Level::Info, "ignoring a static invoice: the server role is off".into());
            return Ok(());
        }
        match self.store.put_static_invoice(&recipient_id, slot, &invoice.encode(), &request_path.encode()) {
            Ok(()) => {
                self.channel_manager.static_invoice_persisted(persisted);
                self.async_log(
                    Level::Info,
                    format!("kept static invoice slot {slot} of recipient {}", who(&recipient_id)),
                );
                Ok(())
            }
            Err(Error::InvalidArgument(why)) => {
                self.async_log(Level::Warn, format!("refused a static invoice of {}: {why}", who(&recipient_id)));
                Ok(())
            }
            Err(e) => {
                self.async_log(Level::Error, format!("cannot keep a static invoice: {e}; will retry"));
                Err(ReplayEvent())
            }
        }
    }

    /// A payer asks for an offline recipient's invoice: answer it from the store (LDK also
    /// forwards the payer's request to the recipient, as our own message: buffered in memory
    /// only, lost while the recipient is offline).
    pub(crate) fn static_invoice_requested(
        &self, recipient_id: Vec<u8>, slot: u16, reply: Responder, request: InvoiceRequest,
    ) -> std::result::Result<(), ReplayEvent> {
        if !self.config.options.async_payments_server {
            return Ok(());
        }
        let kept = match self.store.static_invoice(&recipient_id, slot) {
            Ok(kept) => kept,
            Err(e) => {
                self.async_log(Level::Error, format!("cannot read a static invoice: {e}; will retry"));
                return Err(ReplayEvent());
            }
        };
        let Some((invoice, path)) = kept else {
            self.async_log(Level::Debug, format!("no static invoice in slot {slot} of {}", who(&recipient_id)));
            return Ok(());
        };
        // Our own rows, written from LDK's encodings: a row that does not decode is a bug or a
        // damaged file, reported, never a panic.
        let decoded = StaticInvoice::try_from(invoice)
            .map_err(|e| format!("{e:?}"))
            .and_then(|i| BlindedMessagePath::read(&mut &path[..]).map(|p| (i, p)).map_err(|e| format!("{e:?}")));
        let (invoice, path) = match decoded {
            Ok(v) => v,
            Err(e) => {
                self.async_log(
                    Level::Error,
                    format!("static invoice slot {slot} of {} unreadable: {e}", who(&recipient_id)),
                );
                return Ok(());
            }
        };
        if let Err(e) = self.channel_manager.respond_to_static_invoice_request(invoice, reply, request, path) {
            self.async_log(Level::Warn, format!("cannot answer with slot {slot} of {}: {e:?}", who(&recipient_id)));
        }
        Ok(())
    }
}

/// A recipient id in the log: ours are node ids (33 bytes), shown as such; anything else by length.
fn who(recipient_id: &[u8]) -> String {
    match PublicKey::from_slice(recipient_id) {
        Ok(pk) => pk.to_string(),
        Err(_) => format!("<{} byte id>", recipient_id.len()),
    }
}

impl Node {
    /// Blinded paths to this node for the async-payment recipient `node_id`, valid for
    /// `valid_days`, serialised as LDK writes a `Vec<BlindedMessagePath>` (what ldk-node's
    /// `set_paths_to_static_invoice_server` takes). The recipient id in their context is the
    /// node id, so the invoices it stores are filed under it.
    pub fn async_recipient_paths(&self, node_id: &str, valid_days: u32) -> Result<Vec<u8>> {
        if !self.core.config.options.async_payments_server {
            return Err(Error::InvalidArgument("the async payments server is off".into()));
        }
        if valid_days == 0 || valid_days > MAX_PATHS_VALID_DAYS {
            return Err(Error::InvalidArgument(format!("valid_days must be 1..{MAX_PATHS_VALID_DAYS}")));
        }
        let client = parse_pubkey(node_id)?;
        let expiry = Duration::from_secs(u64::from(valid_days) * 86_400);
        let paths = self
            .core
            .channel_manager
            .blinded_paths_for_async_recipient(client.serialize().to_vec(), Some(expiry))
            .map_err(|()| Error::OnionMessage("cannot build blinded paths to this node".into()))?;
        Ok(paths.encode())
    }

    /// The static invoices kept, newest first.
    pub fn static_invoices(&self) -> Result<Vec<StaticInvoiceRecord>> {
        self.core.store.static_invoices()
    }
}

/// A recipient id as the operator sees it: the node id when it is one, else hex.
pub fn recipient_label(recipient_id: &[u8]) -> String {
    match PublicKey::from_slice(recipient_id) {
        Ok(pk) => pk.to_string(),
        Err(_) => hexs(recipient_id),
    }
}
