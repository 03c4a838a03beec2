//! [`OutputActor`]: owns one [`Sink`] on its own arbiter thread.
//!
//! Local sinks write with blocking file IO and network sinks run their own tasks; a
//! dedicated thread (a single-threaded runtime) keeps both off the thread the inputs and the
//! HTTP server run on. Messages are handled one at a time, each to completion
//! (`AtomicResponse`), so a sink's calls never overlap. The mailbox is bounded ([`MAILBOX`]
//! messages) and callers use `send().await`, so a slow output holds the forwarders, which
//! hold the sources.

use actix::prelude::*;
use rampart_connectors::{ConnectorError, EventBatch, Sink, SinkFuture};
use rampart_core::Alert;
use std::sync::Arc;

/// Messages an output's mailbox holds before senders wait.
pub const MAILBOX: usize = 4;

/// Write a batch of events; answers once the sink has taken it (its ack tokens are
/// settled when the events are durable).
#[derive(Message)]
#[rtype(result = "Result<(), ConnectorError>")]
pub struct WriteEvents(pub EventBatch);

/// Connect the sink (first message after launch).
#[derive(Message)]
#[rtype(result = "Result<(), ConnectorError>")]
pub struct Connect;

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
    /// `None` only while a call is running (the future owns the sink meanwhile).
    sink: Option<Box<dyn Sink>>,
    name: &'static str,
}

impl std::fmt::Debug for OutputActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputActor").field("sink", &self.name).finish()
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
            OutputActor { sink: Some(sink), name }
        });
        OutputHandle { addr, events, alerts, name, arbiter }
    }
}

impl OutputHandle {
    /// Flushes the sink, then stops its thread. Everything sent before is written first
    /// (the mailbox is FIFO).
    /// Connects the sink; see [`Sink::connect`].
    pub async fn connect(&self) -> Result<(), ConnectorError> {
        self.addr.send(Connect).await.unwrap_or(Err(ConnectorError::Closed { component: self.name }))
    }

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

impl OutputActor {
    /// Runs one sink call to completion, then puts the sink back.
    fn call(&mut self, f: impl for<'a> FnOnce(&'a mut Box<dyn Sink>) -> SinkFuture<'a> + 'static) -> AtomicResponse<Self, Result<(), ConnectorError>> {
        let name = self.name;
        let Some(mut sink) = self.sink.take() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(ConnectorError::Closed { component: name }))));
        };
        let work = async move {
            let r = f(&mut sink).await;
            (sink, r)
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(|(sink, r), act, _| {
            act.sink = Some(sink);
            r
        })))
    }
}

impl Handler<Connect> for OutputActor {
    type Result = AtomicResponse<Self, Result<(), ConnectorError>>;
    fn handle(&mut self, _: Connect, _: &mut Context<Self>) -> Self::Result {
        self.call(|s| s.connect())
    }
}

impl Handler<WriteEvents> for OutputActor {
    type Result = AtomicResponse<Self, Result<(), ConnectorError>>;
    fn handle(&mut self, msg: WriteEvents, _: &mut Context<Self>) -> Self::Result {
        self.call(move |s| s.write_events(msg.0))
    }
}

impl Handler<WriteAlerts> for OutputActor {
    type Result = AtomicResponse<Self, Result<(), ConnectorError>>;
    fn handle(&mut self, msg: WriteAlerts, _: &mut Context<Self>) -> Self::Result {
        self.call(move |s| s.write_alerts(msg.0))
    }
}

impl Handler<Flush> for OutputActor {
    type Result = AtomicResponse<Self, Result<(), ConnectorError>>;
    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        self.call(|s| s.flush())
    }
}
