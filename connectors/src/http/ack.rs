//! One [`AckToken`] per event of a request, and the wait for the outputs to settle them.
//!
//! Each token's callback sends `(index, status, reason)` into a channel sized for the
//! request, so a callback never blocks (it runs on whichever output thread drops the last
//! clone). What must stay true: an event whose token never fired is reported as
//! [`Outcome::Unconfirmed`], never as delivered.

use rampart_core::{AckStatus, AckToken, Event};
use std::time::Duration;

/// What became of one event of a request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Every output has it durably.
    Delivered,
    /// An output failed in a way a retry can fix.
    Errored(String),
    /// An output can never take it.
    Rejected(String),
    /// No answer in time (deadline, shutdown) or never sent: the sender should retry.
    Unconfirmed(String),
}

impl Outcome {
    /// Whether the sender should send this event again.
    pub(crate) fn retryable(&self) -> bool {
        matches!(self, Outcome::Errored(_) | Outcome::Unconfirmed(_))
    }

    /// Why it is not delivered (`stored` when it is).
    pub(crate) fn reason(&self) -> &str {
        match self {
            Outcome::Delivered => "stored",
            Outcome::Errored(w) | Outcome::Rejected(w) | Outcome::Unconfirmed(w) => w,
        }
    }
}

/// The tokens of one request and their outcomes.
pub(crate) struct Delivery {
    outcomes: Vec<Outcome>,
    tx: flume::Sender<(usize, AckStatus, Option<String>)>,
    rx: flume::Receiver<(usize, AckStatus, Option<String>)>,
    attached: usize,
}

impl Delivery {
    /// A delivery of `n` events, each unconfirmed until its token fires.
    pub(crate) fn new(n: usize) -> Delivery {
        let (tx, rx) = flume::bounded(n.max(1));
        Delivery { outcomes: vec![Outcome::Unconfirmed("not sent: the request ended first".into()); n], tx, rx, attached: 0 }
    }

    /// Gives each event of `batch` (events `offset..` of the request) its token; returns a
    /// clone of each, which the caller holds while handing the batch over.
    pub(crate) fn attach(&mut self, offset: usize, batch: &mut [Event]) -> Vec<AckToken> {
        batch
            .iter_mut()
            .enumerate()
            .map(|(i, e)| {
                let tx = self.tx.clone();
                let index = offset + i;
                let token = AckToken::new(move |status, reason| {
                    // Sized for every token of the request: never full. A closed channel
                    // means the request is gone; nobody is left to tell.
                    let _ = tx.try_send((index, status, reason));
                });
                self.attached += 1;
                e.ack = Some(token.clone());
                token
            })
            .collect()
    }

    /// Waits for every attached token, until `deadline`, or until `grace` after shutdown
    /// fires, whichever is first; returns each event's outcome.
    pub(crate) async fn settle(mut self, deadline: tokio::time::Instant, mut shutdown: crate::source::Shutdown, grace: Duration, timeout: Duration) -> Vec<Outcome> {
        drop(self.tx);
        let mut settled = 0;
        let stopping = async move {
            shutdown.wait().await;
            tokio::time::sleep(grace).await;
        };
        tokio::pin!(stopping);
        let mut late = None;
        while settled < self.attached {
            tokio::select! {
                r = self.rx.recv_async() => match r {
                    Ok((i, status, reason)) => {
                        if let Some(o) = self.outcomes.get_mut(i) {
                            *o = match status {
                                AckStatus::Delivered => Outcome::Delivered,
                                AckStatus::Errored => Outcome::Errored(reason.unwrap_or_else(|| "an output failed".into())),
                                AckStatus::Rejected => Outcome::Rejected(reason.unwrap_or_else(|| "an output rejected it".into())),
                            };
                        }
                        settled += 1;
                    }
                    Err(_) => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    late = Some(format!("not confirmed by the outputs within ack_timeout ({})", rampart_core::time::format_duration(timeout)));
                    break;
                }
                _ = &mut stopping => {
                    late = Some("not confirmed by the outputs before shutdown".to_string());
                    break;
                }
            }
        }
        if let Some(why) = late {
            // Only the attached tokens that have not fired are late; the rest were never sent.
            for o in &mut self.outcomes[..self.attached] {
                if matches!(o, Outcome::Unconfirmed(_)) {
                    *o = Outcome::Unconfirmed(why.clone());
                }
            }
        }
        self.outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::shutdown_pair;
    use rampart_core::{EventId, Normalizer};

    fn events(n: usize) -> Vec<Event> {
        (0..n).map(|i| Normalizer::default().normalize(serde_json::json!({"n": i}), EventId(i as u128)).unwrap()).collect()
    }

    fn far() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn each_event_gets_its_own_outcome() {
        let (_t, s) = shutdown_pair();
        let mut d = Delivery::new(4);
        let mut evs = events(4);
        let guards = d.attach(0, &mut evs[..3]);
        drop(guards);
        let mut taken: Vec<AckToken> = evs.iter_mut().filter_map(|e| e.ack.take()).collect();
        taken[1].report(AckStatus::Errored, "disk full");
        taken[2].report(AckStatus::Rejected, "mapping");
        taken.clear();
        let out = d.settle(far(), s, Duration::from_secs(1), Duration::from_secs(60)).await;
        assert_eq!(out[0], Outcome::Delivered);
        assert_eq!(out[1], Outcome::Errored("disk full".into()));
        assert_eq!(out[2], Outcome::Rejected("mapping".into()));
        assert!(matches!(&out[3], Outcome::Unconfirmed(w) if w.contains("not sent")), "{:?}", out[3]);
        assert!(out[1].retryable() && !out[2].retryable() && out[3].retryable());
    }

    #[tokio::test]
    async fn a_token_still_held_at_the_deadline_is_unconfirmed() {
        let (_t, s) = shutdown_pair();
        let mut d = Delivery::new(2);
        let mut evs = events(2);
        drop(d.attach(0, &mut evs));
        drop(evs.remove(0)); // the first is written; the second stays in an output
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        let out = d.settle(deadline, s, Duration::from_secs(3), Duration::from_secs(30)).await;
        assert_eq!(out[0], Outcome::Delivered);
        assert!(matches!(&out[1], Outcome::Unconfirmed(w) if w.contains("ack_timeout (30s)")), "{:?}", out[1]);
        drop(evs);
    }

    #[tokio::test]
    async fn shutdown_ends_the_wait_after_the_grace() {
        let (t, s) = shutdown_pair();
        let mut d = Delivery::new(1);
        let mut evs = events(1);
        drop(d.attach(0, &mut evs));
        t.trigger();
        let started = tokio::time::Instant::now();
        let out = d.settle(far(), s, Duration::from_millis(200), Duration::from_secs(60)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(10), "{waited:?}");
        assert!(matches!(&out[0], Outcome::Unconfirmed(w) if w.contains("shutdown")), "{:?}", out[0]);
        drop(evs);
    }
}
