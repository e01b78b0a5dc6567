//! What the listener may acknowledge on one connection, so that none of its claims is
//! taken on trust.
//!
//! The forwarder moves a position only on the listener's word, so a peer that claims lines
//! it never stored would make them skipped for good. The rules, checked per source index:
//!
//! - **WELCOME** watermarks (one per source declared in HELLO, no more, no fewer) and the
//!   first `A` answering an `S` declaration are *watermarks*: the master may hold lines a
//!   previous connection or a previous forwarder process sent and never saw acknowledged,
//!   so the bound is what the source's file holds (`Stream::holds`), not this connection.
//! - Every other `A idx seq` is an *acknowledgement*: `idx` must be declared on this
//!   connection and `seq` at most the highest line sent on it (or the accepted watermark).
//!
//! Anything else is a [`super::Error::Violation`]: the forwarder logs it with the peer's
//! CN and fingerprint, drops the connection, and moves no position because of it; what was
//! legitimately acknowledged before stays acknowledged. A listener that only ever claims
//! lines the file holds can still make the forwarder skip them: that is the price of
//! WELCOME (resuming after a lost acknowledgement), and why the master's identity and pin
//! are checked before any of this.
//!
//! One honest listener race trips the rule too: the store's watermark is the highest
//! committed line of a source over every connection, so when a dead connection's last
//! batch commits after this connection's WELCOME (a forwarder restarted within
//! milliseconds of its predecessor's death), an acknowledgement can run ahead of what this
//! connection sent. The forwarder then reconnects once and the next WELCOME carries that
//! mark, checked against the file: one reconnect, nothing lost or repeated.

/// Per source index: the highest seq the listener may acknowledge.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    sources: Vec<Entry>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    declared: bool,
    /// Highest line sent on this connection, or the accepted watermark if higher.
    bound: u64,
    /// Declared by `S`: its first acknowledgement is the master's watermark.
    awaiting_mark: bool,
}

impl Ledger {
    fn entry(&mut self, idx: u32) -> &mut Entry {
        let i = idx as usize;
        if self.sources.len() <= i {
            self.sources.resize(i + 1, Entry::default());
        }
        &mut self.sources[i]
    }

    /// Source `idx` was declared, in HELLO (`by_s` false) or by an `S` frame.
    pub(super) fn declare(&mut self, idx: u32, by_s: bool) {
        *self.entry(idx) = Entry {
            declared: true,
            bound: 0,
            awaiting_mark: by_s,
        };
    }

    /// Line `seq` of source `idx` was sent on this connection.
    pub(super) fn sent(&mut self, idx: u32, seq: u64) {
        let e = self.entry(idx);
        e.bound = e.bound.max(seq);
    }

    /// A WELCOME watermark of `idx`, checked against the file by the caller, was accepted.
    pub(super) fn accept_mark(&mut self, idx: u32, seq: u64) {
        let e = self.entry(idx);
        e.bound = e.bound.max(seq);
    }

    /// Checks `A idx seq`; `holds(seq)` says whether the source's file has that line (asked
    /// only for the watermark answering an `S`). `Err` names the violation.
    pub(super) fn check_ack(
        &mut self,
        idx: u32,
        seq: u64,
        holds: impl FnOnce(u64) -> bool,
    ) -> Result<(), String> {
        let Some(e) = self.sources.get_mut(idx as usize).filter(|e| e.declared) else {
            return Err(format!(
                "acknowledged line {seq} of source {idx}, which this connection never declared"
            ));
        };
        let was_awaiting = std::mem::take(&mut e.awaiting_mark);
        if seq <= e.bound {
            return Ok(());
        }
        if was_awaiting {
            if holds(seq) {
                e.bound = seq;
                return Ok(());
            }
            return Err(format!(
                "claimed line {seq} of source {idx} is committed, but its file holds fewer lines"
            ));
        }
        Err(format!(
            "acknowledged line {seq} of source {idx}, but this connection sent it only lines up to {}",
            e.bound
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_stay_within_what_was_sent() {
        let mut l = Ledger::default();
        l.declare(0, false);
        assert!(l.check_ack(0, 0, |_| true).is_ok());
        assert!(l.check_ack(0, 1, |_| true).is_err(), "nothing sent yet");
        l.sent(0, 1);
        l.sent(0, 5);
        assert!(l.check_ack(0, 5, |_| false).is_ok());
        assert!(
            l.check_ack(0, 3, |_| false).is_ok(),
            "an older ack is harmless"
        );
        let err = l.check_ack(0, 6, |_| true).expect_err("never sent");
        assert!(err.contains("up to 5"), "{err}");
        assert!(l.check_ack(1, 0, |_| true).is_err(), "undeclared source");
        l.accept_mark(0, 9);
        assert!(l.check_ack(0, 9, |_| false).is_ok(), "the WELCOME mark");
    }

    #[test]
    fn the_answer_to_a_declaration_is_a_watermark_checked_against_the_file() {
        let mut l = Ledger::default();
        l.declare(2, true);
        assert!(l.check_ack(2, 7, |seq| seq <= 7).is_ok());
        l.declare(3, true);
        assert!(
            l.check_ack(3, 8, |seq| seq <= 7).is_err(),
            "beyond the file"
        );
        // Only the first answer is a watermark: later ones are acknowledgements.
        l.declare(4, true);
        assert!(l.check_ack(4, 0, |_| true).is_ok());
        assert!(l.check_ack(4, 1, |_| true).is_err());
    }
}
