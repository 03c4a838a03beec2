//! [`AlertPump`]: reads the engine's alert channel and hands alerts to every alert output.
//!
//! It batches what is already waiting (up to [`MAX_ALERT_BATCH`]) so a burst costs one
//! write per output, and awaits every output before reading on, so a slow output backs up
//! into the engine's bounded alert channel. It ends when the engine has shut down and the
//! channel is empty, which is what lets the pipeline flush outputs only after the last
//! alert of the last window is written.

use crate::output::{OutputActor, WriteAlerts};
use actix::prelude::*;
use futures::future::join_all;
use rampart_core::Alert;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Most alerts written in one batch.
pub const MAX_ALERT_BATCH: usize = 256;

/// The alert pump actor.
pub struct AlertPump {
    rx: Option<flume::Receiver<Alert>>,
    outputs: Vec<Addr<OutputActor>>,
    done: Option<oneshot::Sender<(u64, Vec<String>)>>,
}

impl std::fmt::Debug for AlertPump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertPump").field("outputs", &self.outputs.len()).finish_non_exhaustive()
    }
}

impl AlertPump {
    /// A pump from `rx` to `outputs`; `done` receives (alerts pumped, errors) at the end.
    pub fn new(rx: flume::Receiver<Alert>, outputs: Vec<Addr<OutputActor>>, done: oneshot::Sender<(u64, Vec<String>)>) -> Self {
        AlertPump { rx: Some(rx), outputs, done: Some(done) }
    }
}

impl Actor for AlertPump {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(rx) = self.rx.take() else { return };
        let outputs = self.outputs.clone();
        let work = async move {
            let mut errors = Vec::new();
            let mut pumped = 0u64;
            while let Ok(first) = rx.recv_async().await {
                let mut batch = vec![first];
                batch.extend(rx.try_iter().take(MAX_ALERT_BATCH - 1));
                pumped += batch.len() as u64;
                let batch = Arc::new(batch);
                for r in join_all(outputs.iter().map(|o| o.send(WriteAlerts(batch.clone())))).await {
                    let problem = match r {
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => e.to_string(),
                        Err(e) => format!("alert output unavailable: {e}"),
                    };
                    tracing::warn!("{problem}");
                    if errors.len() < 100 {
                        errors.push(problem);
                    }
                }
            }
            (pumped, errors)
        };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            if let Some(done) = act.done.take() {
                let _ = done.send(result);
            }
            ctx.stop();
        }));
    }
}
