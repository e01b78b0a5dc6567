//! Attack events on the wire: RFC 5424 lines and RFC 6587 octet-counted frames.
//!
//! Honeypots write one RFC 5424 line per event ([`Message`], engine.md §2.7); the
//! collector, the forwarder and the master's listener read them back with one tolerant
//! parser ([`parse`], engine.md §3.2) into a typed [`Event`]; between hosts the lines
//! travel as octet-counted frames ([`OctetCodec`], swarm.md §8.1).
//!
//! Everything that reads input here is total: any byte string yields an event, a typed
//! error or an incomplete frame, never a panic. The HOSTNAME of a line is written by the
//! decky and so influenced by the attacker: provenance comes from the TLS peer, never
//! from [`Event::decky`].
mod codec;
mod fields;
mod format;
mod ip;
mod parse;
mod timestamp;

pub(crate) use codec::put_decimal;
pub use codec::{CodecError, DEFAULT_MAX_FRAME, OctetCodec};
pub use fields::{Fields, FieldsBuilder};
pub use format::{
    FACILITY_LOCAL0, MAX_APP_NAME, MAX_HOSTNAME, MAX_MSG_ID, MAX_PARAM_NAME, Message, Severity,
    clean_msg, escape_value, header_token, param_name,
};
pub use ip::{IP_FIELDS, split_host_port};
pub use parse::{COMMAND_EVENT, Event, ParseError, UNKNOWN_IP, parse, parse_bytes};
pub use timestamp::{Timestamp, format_rfc5424, parse_iso};

/// SD-ID of decnet's structured-data element (private enterprise number 55555).
pub const SD_ID: &str = "relay@55555";

#[cfg(test)]
mod proptests;
