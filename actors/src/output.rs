//! [`OutputActor`]: owns one [`Sink`] on its own arbiter thread.
//!
//! The sinks write with blocking file IO; a dedicated thread keeps that off the thread the
//! inputs and the HTTP server run on. The mailbox is bounded ([`MAILBOX`] messages) and
//! callers use `send().await`, so a slow disk holds the forwarders, which hold the sources.

use actix::prelude::*;
use rampart_connectors::{ConnectorError, Sink};
use rampart_core::{Alert, Event};
use std::sync::Arc;

/// Messages an output's mailbox holds before senders wait.
pub const MAILBOX: usize = 4;

/// Write a batch of events; answers once they are durably written.
#[derive(Message)]
#[rtype(result = "Result<(), ConnectorError>")]
pub struct WriteEvents(pub Arc<Vec<Arc<Event>>>);

/// Write a batch of alerts; answers once they are durably written.
#[derive(Message)]
#[rtype(result = "Result<(), ConnectorError>")]
pub struct WriteAlerts(pub Arc<Vec<Alert>>);

/// Flush whatever is buffered (shutdown).
#[derive(Message)]
#[rtype(result = "Result<(), ConnectorError>")]
pub struct Flush;

/// The actor around one sink.
pub struct OutputActor {
    sink: Box<dyn Sink>,
}

impl std::fmt::Debug for OutputActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputActor").field("sink", &self.sink.name()).finish()
    }
}

/// A started output: its address, what it wants, and the thread it runs on.
#[derive(Debug)]
pub struct OutputHandle {
    /// The actor.
    pub addr: Addr<OutputActor>,
    /// Whether it takes events.
    pub events: bool,
    /// Whether it takes alerts.
    pub alerts: bool,
    /// Its component name (`file`, `stdout`).
    pub name: &'static str,
    arbiter: Arbiter,
}

impl OutputActor {
    /// Starts `sink` on a new arbiter thread with a mailbox of `mailbox` messages.
    pub fn launch(sink: Box<dyn Sink>, mailbox: usize) -> OutputHandle {
        let (events, alerts, name) = (sink.wants_events(), sink.wants_alerts(), sink.name());
        let arbiter = Arbiter::new();
        let addr = OutputActor::start_in_arbiter(&arbiter.handle(), move |ctx| {
            ctx.set_mailbox_capacity(mailbox.max(1));
            OutputActor { sink }
        });
        OutputHandle { addr, events, alerts, name, arbiter }
    }
}

impl OutputHandle {
    /// Flushes the sink, then stops its thread. Everything sent before is written first
    /// (the mailbox is FIFO).
    pub async fn close(self) -> Result<(), ConnectorError> {
        let flushed = self.addr.send(Flush).await.unwrap_or(Ok(()));
        self.arbiter.stop();
        let arbiter = self.arbiter;
        let _ = actix_rt::task::spawn_blocking(move || arbiter.join()).await;
        flushed
    }
}

impl Actor for OutputActor {
    type Context = Context<Self>;
}

impl Handler<WriteEvents> for OutputActor {
    type Result = Result<(), ConnectorError>;
    fn handle(&mut self, msg: WriteEvents, _: &mut Context<Self>) -> Self::Result {
        self.sink.write_events(&msg.0)
    }
}

impl Handler<WriteAlerts> for OutputActor {
    type Result = Result<(), ConnectorError>;
    fn handle(&mut self, msg: WriteAlerts, _: &mut Context<Self>) -> Self::Result {
        self.sink.write_alerts(&msg.0)
    }
}

impl Handler<Flush> for OutputActor {
    type Result = Result<(), ConnectorError>;
    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        self.sink.flush()
    }
}
