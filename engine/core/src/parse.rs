//! Parsing the hex and text forms of ids that callers hand in, with errors that name the value.

use std::io::Cursor;
use std::str::FromStr;

use bitcoin::secp256k1::PublicKey;
use lightning::blinded_path::message::BlindedMessagePath;
use lightning::ln::channelmanager::InterceptId;
use lightning::ln::types::ChannelId;
use lightning::util::ser::Readable;

use crate::error::{Error, Result};

pub(crate) fn hexs(b: &[u8]) -> String {
    hex::encode(b)
}

pub(crate) fn parse_pubkey(s: &str) -> Result<PublicKey> {
    PublicKey::from_str(s.trim())
        .map_err(|_| Error::InvalidArgument(format!("'{s}' is not a node id (33-byte compressed public key in hex)")))
}

/// 32 bytes given as hex; `what` names them in the error.
pub(crate) fn parse_hex32(s: &str, what: &str) -> Result<[u8; 32]> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| Error::InvalidArgument(format!("'{s}' is not {what} (32 bytes in hex)")))
}

pub(crate) fn parse_channel_id(s: &str) -> Result<ChannelId> {
    parse_hex32(s, "a channel id").map(ChannelId)
}

pub(crate) fn parse_intercept_id(s: &str) -> Result<InterceptId> {
    parse_hex32(s, "an intercept id").map(InterceptId)
}

pub(crate) fn parse_blinded_path(s: &str) -> Result<BlindedMessagePath> {
    let bytes = hex::decode(s.trim()).map_err(|_| Error::InvalidArgument("blinded path is not hex".into()))?;
    BlindedMessagePath::read(&mut Cursor::new(bytes))
        .map_err(|e| Error::InvalidArgument(format!("not a blinded message path: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex32_names_what_is_wrong() {
        assert_eq!(parse_hex32(&"ab".repeat(32), "x").unwrap(), [0xab; 32]);
        let err = parse_hex32("abcd", "a channel id").unwrap_err().to_string();
        assert!(err.contains("not a channel id"), "{err}");
        assert!(parse_pubkey("02").is_err());
    }
}
