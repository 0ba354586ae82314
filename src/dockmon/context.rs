//! What a command handler may use besides its frame: the Docker client, the configuration, a way to
//! send frames later (long operations outlive their reply and even the connection, spec 2.8), the
//! executor to run them on, and the state of the DockMon link.
//!
//! The agent (`modes::agent`) builds one `Context` for its whole life and hands it to every handler.
//! Handlers never touch the socket: they queue frames through [`Context::send`], which goes to the
//! outbox (replies, then events, then stats) and wakes the writer.
use crate::config::Config;
use crate::docker::Client;
use crate::outbox::Class;
use smol::channel::{Receiver, Sender};
use smol::LocalExecutor;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Where frames go: implemented by the agent over its outbox.
pub trait Sink {
    /// Queues `frame` with the outbox's policy for `class` (events and stats past their caps drop
    /// the oldest; replies are never dropped).
    fn send(&self, class: Class, frame: Vec<u8>);
    /// A buffer for the next frame (the outbox recycles sent frames' buffers).
    fn buffer(&self) -> Vec<u8>;
    /// Frames of `class` waiting to be written, so a producer that must not lose output (the web
    /// shell) can wait instead of pushing past the cap.
    fn queued(&self, class: Class) -> usize;
    /// Resolves once the outbox has written something (or at once if it is empty): a producer that
    /// saw [`Sink::queued`] at its cap waits here.
    fn drained(&self) -> Receiver<()>;
}

/// The state of the DockMon connection, as handlers see it.
#[derive(Default)]
pub struct Link {
    generation: Cell<u64>,
    connected: Cell<bool>,
    /// Closed when the current connection ends: every clone of its receiver wakes up.
    ended: RefCell<Option<Sender<()>>>,
    ended_rx: RefCell<Option<Receiver<()>>>,
    /// Closed by [`Link::retire`] (self-update, `dockmon::selfupdate`).
    retire: Retire,
}

/// The retire signal: a channel that is only ever closed.
struct Retire(Sender<()>, Receiver<()>);

impl Default for Retire {
    fn default() -> Self {
        let (tx, rx) = smol::channel::bounded(1);
        Retire(tx, rx)
    }
}

impl Link {
    /// A new connection is up (registered).
    pub fn up(&self) {
        let (tx, rx) = smol::channel::bounded(1);
        *self.ended.borrow_mut() = Some(tx);
        *self.ended_rx.borrow_mut() = Some(rx);
        self.generation.set(self.generation.get() + 1);
        self.connected.set(true);
    }

    /// The connection ended: whoever waits on [`Link::ended`] wakes.
    pub fn down(&self) {
        self.connected.set(false);
        // Dropping the only sender closes the channel.
        self.ended.borrow_mut().take();
        self.ended_rx.borrow_mut().take();
    }

    /// Whether a registered connection is up now.
    pub fn is_connected(&self) -> bool {
        self.connected.get()
    }

    /// Counts connections: a handler that started on one connection compares it to tell whether
    /// the connection it belongs to is still the current one.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// This agent was replaced (container self-update): the agent loop closes the connection, does
    /// not reconnect and waits to be removed.
    pub fn retire(&self) {
        self.retire.0.close();
    }

    /// Whether [`Link::retire`] was called.
    pub fn is_retired(&self) -> bool {
        self.retire.0.is_closed()
    }

    /// Resolves once [`Link::retire`] is called.
    pub async fn retired(&self) {
        let _ = self.retire.1.recv().await;
    }

    /// A receiver whose `recv()` fails once the current connection ends (at once when there is
    /// none). Per-connection work (shell sessions, health checks) races its work against it.
    pub fn ended(&self) -> Receiver<()> {
        match &*self.ended_rx.borrow() {
            Some(rx) => rx.clone(),
            None => {
                let (_, rx) = smol::channel::bounded(1);
                rx
            }
        }
    }
}

/// Everything a handler gets.
pub struct Context {
    /// The engine.
    pub client: Rc<Client>,
    /// The agent's configuration (data path, stacks directory, TLS settings).
    pub config: Rc<Config>,
    /// The executor, for work that goes on after the reply (spec 3.8: updates, deployments).
    pub ex: Rc<LocalExecutor<'static>>,
    /// Where frames go.
    pub sink: Rc<dyn Sink>,
    /// The DockMon connection's state.
    pub link: Rc<Link>,
}

impl Context {
    /// Queues a frame (see [`Sink::send`]).
    pub fn send(&self, class: Class, frame: Vec<u8>) {
        self.sink.send(class, frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_wakes_when_the_connection_goes_down() {
        let link = Link::default();
        assert!(link.ended().try_recv().is_err());
        assert!(link.ended().is_closed(), "no connection: already ended");
        link.up();
        let rx = link.ended();
        assert!(!rx.is_closed());
        assert_eq!(link.generation(), 1);
        link.down();
        assert!(rx.is_closed());
        assert!(!link.is_connected());
        link.up();
        assert_eq!(link.generation(), 2);
        assert!(!link.ended().is_closed());
        assert!(!link.is_retired());
        link.retire();
        assert!(link.is_retired());
        async_io::block_on(link.retired());
    }
}
