//! [`Handle`]: the one door from async (or plain threaded) code into the dataflow.
//!
//! Each batch goes, whole, to one worker's bounded channel (round-robin); a full channel
//! makes `send` wait, which is the engine's backpressure. The handle owns the watermark:
//! it drops events already late (counting them), advances the watermark past the batch,
//! and only then publishes it to every worker, so a worker that sees a watermark has the
//! batches that produced it in its channel already (it reads the watermark *before*
//! draining, then advances its input to it).
//!
//! The watermark travels as a shared atomic plus an unpark rather than as an `Advance`
//! message in every worker's channel: a message would have to wait behind a full channel
//! (stalling the sender on a worker it is not even feeding) and would queue one copy per
//! batch per worker, while the atomic only ever holds the newest value and never blocks.

use crate::dataflow::Counters;
use crate::EngineError;
use parking_lot::Mutex;
use rampart_core::{Counter, Event, EventTime, Metrics, Watermark};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::Thread;

/// A batch of events on its way to one worker.
pub(crate) type Batch = Vec<Arc<Event>>;

/// A batch with the channel of the worker it goes to.
type Routed = (flume::Sender<Batch>, Batch);

/// State shared by every handle and every worker.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The published watermark (ms); workers advance their inputs to it.
    watermark: AtomicU64,
    /// Worker threads, to unpark when there is work (registered as each worker starts).
    threads: Mutex<Vec<Option<Thread>>>,
    pub counters: Arc<Counters>,
    metrics: Arc<Metrics>,
}

struct State {
    watermark: Watermark,
    /// `None` once the engine is shutting down: dropping the senders is what tells workers
    /// that input has ended (after they drain what is already queued or in flight).
    senders: Option<Vec<flume::Sender<Batch>>>,
    next: usize,
}

impl Shared {
    pub fn new(senders: Vec<flume::Sender<Batch>>, lateness: std::time::Duration, counters: Arc<Counters>, metrics: Arc<Metrics>) -> Shared {
        let workers = senders.len();
        Shared {
            state: Mutex::new(State { watermark: Watermark::new(lateness), senders: Some(senders), next: 0 }),
            watermark: AtomicU64::new(0),
            threads: Mutex::new(vec![None; workers]),
            counters,
            metrics,
        }
    }

    /// Called by worker `index` on its own thread before it first parks.
    pub fn register(&self, index: usize) {
        if let Some(slot) = self.threads.lock().get_mut(index) {
            *slot = Some(std::thread::current());
        }
    }

    /// The published watermark.
    pub fn watermark(&self) -> u64 {
        self.watermark.load(Ordering::Acquire)
    }

    /// Stops taking input; workers finish what is queued, then flush every window.
    pub fn close(&self) {
        self.state.lock().senders = None;
        self.wake();
    }

    fn wake(&self) {
        for t in self.threads.lock().iter().flatten() {
            t.unpark();
        }
    }

    fn publish(&self, wm: EventTime) {
        self.watermark.fetch_max(wm.0, Ordering::AcqRel);
        self.wake();
    }

    /// Filters late events, advances the watermark and picks the worker for a batch.
    fn prepare(&self, batch: Batch) -> Result<(Option<Routed>, EventTime), EngineError> {
        let mut st = self.state.lock();
        let st = &mut *st;
        let Some(senders) = &st.senders else { return Err(EngineError::Closed) };
        let total = batch.len() as u64;
        let mut kept = Vec::with_capacity(batch.len());
        for event in batch {
            // One event at a time, so the verdict does not depend on how input is batched.
            if st.watermark.is_late(event.time) {
                continue;
            }
            st.watermark.observe(event.time);
            kept.push(event);
        }
        let late = total - kept.len() as u64;
        self.counters.events.fetch_add(total, Ordering::Relaxed);
        if late > 0 {
            self.counters.late.fetch_add(late, Ordering::Relaxed);
            self.metrics.add(Counter::EventsLate, late);
        }
        let wm = st.watermark.current();
        if kept.is_empty() || senders.is_empty() {
            return Ok((None, wm));
        }
        let sender = senders[st.next % senders.len()].clone();
        st.next = st.next.wrapping_add(1);
        Ok((Some((sender, kept)), wm))
    }
}

/// Feeds events to a running engine. Cheap to clone; every clone feeds the same dataflow.
///
/// Events later than the watermark (the newest event time seen minus the configured
/// lateness) are counted (`rampart_events_late_total`) and not correlated; storing them is
/// the outputs' business.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("watermark", &self.shared.watermark()).finish_non_exhaustive()
    }
}

impl Handle {
    /// Sends a batch, waiting while the chosen worker's channel is full.
    ///
    /// Fails with [`EngineError::Closed`] once the engine is shutting down.
    pub async fn send(&self, batch: Vec<Arc<Event>>) -> Result<(), EngineError> {
        let (target, wm) = self.shared.prepare(batch)?;
        if let Some((sender, batch)) = target {
            sender.send_async(batch).await.map_err(|_| EngineError::Closed)?;
        }
        self.shared.publish(wm);
        Ok(())
    }

    /// As [`Handle::send`], blocking the calling thread instead (not for async tasks).
    pub fn send_blocking(&self, batch: Vec<Arc<Event>>) -> Result<(), EngineError> {
        let (target, wm) = self.shared.prepare(batch)?;
        if let Some((sender, batch)) = target {
            sender.send(batch).map_err(|_| EngineError::Closed)?;
        }
        self.shared.publish(wm);
        Ok(())
    }

    /// Moves the watermark to at least `t` (a processing-time tick, so that windows close
    /// when input goes quiet). Events before the new watermark become late.
    pub fn advance_to(&self, t: EventTime) {
        let wm = {
            let mut st = self.shared.state.lock();
            st.watermark.advance_to(t);
            st.watermark.current()
        };
        self.shared.publish(wm);
    }

    /// The current watermark.
    pub fn watermark(&self) -> EventTime {
        EventTime(self.shared.watermark())
    }
}
