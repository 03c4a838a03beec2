//! [`AckToken`]: end-to-end acknowledgement.
//!
//! A source creates one token per delivery and hands clones to every output the event goes
//! to. Each output reports [`AckStatus`] on its clone (or simply drops it after a durable
//! write, which counts as delivered). When the last clone is gone the source's callback runs
//! once with the worst status reported, and the source acks, requeues or dead-letters the
//! delivery accordingly. This is how Vector's finalizers work and what MozDef's auto-ack
//! lacked.

use parking_lot::Mutex;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The outcome of delivering an event to the outputs, worst wins.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AckStatus {
    /// Every output has it durably.
    Delivered = 0,
    /// An output failed in a way a retry can fix: redeliver.
    Errored = 1,
    /// An output can never accept it (poison): dead-letter, do not redeliver.
    Rejected = 2,
}

type Callback = Box<dyn FnOnce(AckStatus, Option<String>) + Send>;

struct Shared {
    status: AtomicU8,
    reason: Mutex<Option<String>>,
    callback: Mutex<Option<Callback>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let status = match self.status.load(Ordering::Acquire) {
            0 => AckStatus::Delivered,
            1 => AckStatus::Errored,
            _ => AckStatus::Rejected,
        };
        if let Some(cb) = self.callback.get_mut().take() {
            cb(status, self.reason.get_mut().take());
        }
    }
}

/// A shared acknowledgement; see the module docs.
#[derive(Clone)]
pub struct AckToken(Arc<Shared>);

impl AckToken {
    /// A token whose `callback` runs once, when the last clone is dropped, with the worst
    /// status any clone reported and the reason that came with it.
    pub fn new(callback: impl FnOnce(AckStatus, Option<String>) + Send + 'static) -> AckToken {
        AckToken(Arc::new(Shared {
            status: AtomicU8::new(0),
            reason: Mutex::new(None),
            callback: Mutex::new(Some(Box::new(callback))),
        }))
    }

    /// Reports an outcome for this holder; the worst reported status wins.
    pub fn report(&self, status: AckStatus, reason: impl Into<String>) {
        let prev = self.0.status.fetch_max(status as u8, Ordering::AcqRel);
        if status as u8 > prev {
            *self.0.reason.lock() = Some(reason.into());
        }
    }
}

impl fmt::Debug for AckToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AckToken(holders={})", Arc::strong_count(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn fires_once_when_last_clone_drops_with_worst_status() {
        let (tx, rx) = mpsc::channel();
        let t = AckToken::new(move |s, r| tx.send((s, r)).unwrap());
        let a = t.clone();
        let b = t.clone();
        drop(t);
        a.report(AckStatus::Errored, "es 503");
        b.report(AckStatus::Delivered, "ok");
        drop(a);
        assert!(rx.try_recv().is_err(), "must wait for the last holder");
        drop(b);
        assert_eq!(rx.try_recv().unwrap(), (AckStatus::Errored, Some("es 503".into())));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn plain_drop_is_delivered() {
        let (tx, rx) = mpsc::channel();
        drop(AckToken::new(move |s, _| tx.send(s).unwrap()));
        assert_eq!(rx.recv().unwrap(), AckStatus::Delivered);
    }
}
